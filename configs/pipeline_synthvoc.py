# The main job of tools/run_pipeline.py: the embedded synthetic dataset and
# the config of each stage.
data = dict(
    root='data/synthvoc',
    # arguments of mmcyc.datasets.synthvoc.make_synthvoc (its defaults when
    # empty: 240 train_aug / 60 val images of 96 px, variant 'multi-part');
    # changing them regenerates the dataset. variant='single-part' is the
    # control where Cyc is not expected to help (pipeline_synthvoc_single.py)
    generator=dict(seed=0))
cam = dict(config='configs/cam_resnet38_synthvoc.py')
cyc = dict(config='configs/cyc_resnet38_synthvoc.py')
# stage 3: N of Table 1 without (16) and with (64) random walk
refine = dict(num_refs=16, num_refs_rw=64)
aff = dict(config='configs/aff_resnet38_synthvoc.py')
# stage 5: a stock mmseg model trained on each folder of pseudo masks of
# train_aug, rw_cyc (CAM + RW + Cyc, results.json "seg_val") and rw
# (CAM + RW, i.e. AffinityNet, "seg_val_rw"), scored on val; tta: also with
# mmseg's multi-scale + flip test (tools/test.py --tta; "seg_val_tta",
# "seg_val_rw_tta"), a few seconds a model
seg = dict(
    config='configs/fcn_r18-d8_synthvoc-pseudo.py',
    pseudo_masks=['rw_cyc', 'rw'],
    tta=True)
