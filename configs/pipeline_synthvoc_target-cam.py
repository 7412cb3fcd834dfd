# The main job with CyCSNet's propagation step restricted to B's CAM
# (configs/cyc_resnet38_synthvoc_target-cam.py); every other stage as in
# pipeline_synthvoc.py, so a copy of a finished main job reruns stage 2 on:
#   python tools/run_pipeline.py \
#       --config configs/pipeline_synthvoc_target-cam.py \
#       --work-dir work_dirs/pipeline_target-cam [--seed S]
_base_ = ['./pipeline_synthvoc.py']
cyc = dict(config='configs/cyc_resnet38_synthvoc_target-cam.py')
