# The main job with SSENet (Wang et al. 2019, arXiv 1909.03714) as the
# stage-1 CAM source instead of the plain CAM classifier (the paper's Table 1
# "SEENet" baseline), on the same data; every later stage reads its CAMs
# unchanged. Give it its own work dir: the stage keys differ from the main
# job's, so sharing one would remove the main job's outputs.
#   python tools/run_pipeline.py --config configs/pipeline_synthvoc_ssenet.py \
#       --work-dir work_dirs/pipeline_ssenet
_base_ = ['./pipeline_synthvoc.py']
cam = dict(config='configs/ssenet_resnet38_synthvoc.py')
# C of stage 2 = the SSENet model (same modules as the CAM classifier)
cyc = dict(config='configs/cyc_resnet38_synthvoc_ssenet.py')
# stage 5 left out, as in pipeline_synthvoc_vgg16.py
seg = dict(pseudo_masks=[])
