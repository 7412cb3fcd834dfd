# The main job with SSENet as the CAM source, its second pass at 0.5x instead
# of 0.3x (configs/ssenet-halfscale_resnet38_synthvoc.py says why); stage 5
# left out as in pipeline_synthvoc_ssenet.py.
#   python tools/run_pipeline.py \
#       --config configs/pipeline_synthvoc_ssenet-halfscale.py \
#       --work-dir work_dirs/pipeline_ssenet-halfscale
_base_ = ['./pipeline_synthvoc_ssenet.py']
cam = dict(config='configs/ssenet-halfscale_resnet38_synthvoc.py')
cyc = dict(config='configs/cyc_resnet38_synthvoc_ssenet-halfscale.py')
