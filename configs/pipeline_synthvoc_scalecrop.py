# The main job with stage 1 trained on scale-and-crop augmented images
# (configs/cam_resnet38_synthvoc_scalecrop.py); every other stage as in
# pipeline_synthvoc.py.
#   python tools/run_pipeline.py \
#       --config configs/pipeline_synthvoc_scalecrop.py \
#       --work-dir work_dirs/pipeline_scalecrop [--seed S]
_base_ = ['./pipeline_synthvoc.py']
cam = dict(config='configs/cam_resnet38_synthvoc_scalecrop.py')
