# tools/run_pipeline.py on a tiny dataset with the tiny stage configs.
data = dict(
    root='data/synthvoc_tiny',
    generator=dict(num_train=24, num_val=8, size=64, seed=3))
cam = dict(config='tests/data/cam_tiny_synthvoc.py')
cyc = dict(config='tests/data/cyc_tiny_synthvoc.py')
refine = dict(num_refs=4, num_refs_rw=8)
aff = dict(config='tests/data/aff_tiny_synthvoc.py')
seg = dict(
    config='tests/data/seg_tiny_synthvoc.py', pseudo_masks=['rw_cyc', 'rw'],
    tta=True)
