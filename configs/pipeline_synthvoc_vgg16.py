# The main job with psa's VGG-16 (VGG16d) instead of ResNet-38 in stages 1, 2
# and 4 (the paper's Table 3), on the same data. Give it its own work dir:
#   python tools/run_pipeline.py --config configs/pipeline_synthvoc_vgg16.py \
#       --work-dir work_dirs/pipeline_vgg16
_base_ = ['./pipeline_synthvoc.py']
cam = dict(config='configs/cam_vgg16_synthvoc.py')
cyc = dict(config='configs/cyc_vgg16_synthvoc.py')
aff = dict(config='configs/aff_vgg16_synthvoc.py')
# the source rows are pseudo masks on train (X, X + Cyc, X + RW,
# X + RW + Cyc); stage 5 is left out: at this size its val score is training
# noise (README, finding 5: up to 8 points from float-level changes)
seg = dict(pseudo_masks=[])
