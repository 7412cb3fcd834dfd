# The main job with LPCAM (Chen & Sun, CVPR 2023) as the CAM source: the
# stage-1 classifier of the main job, its CAMs of `lpcam.split` clustered
# into class and context prototypes, and the LPCAM maps in the place of the
# CAMs for every later stage (the paper's Table 2). Give it its own work dir:
#   python tools/run_pipeline.py --config configs/pipeline_synthvoc_lpcam.py \
#       --work-dir work_dirs/pipeline_lpcam
_base_ = ['./pipeline_synthvoc.py']
# train, as the public code (save_feature on voc12/train.txt, scale 1)
lpcam = dict(config='configs/lpcam_resnet38_synthvoc.py', split='train')
# stage 5 left out, as in pipeline_synthvoc_vgg16.py
seg = dict(pseudo_masks=[])
