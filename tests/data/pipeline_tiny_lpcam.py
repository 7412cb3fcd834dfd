# tools/run_pipeline.py with LPCAM as the CAM source, on the tiny dataset.
_base_ = ['./pipeline_tiny.py']
cam = dict(config='tests/data/cam_tiny_lpcam.py')
lpcam = dict(config='tests/data/lpcam_tiny_synthvoc.py', split='train')
