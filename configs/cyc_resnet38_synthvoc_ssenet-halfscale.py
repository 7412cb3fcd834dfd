# Stage 2 after configs/ssenet-halfscale_resnet38_synthvoc.py: C is that
# model (SSENet with its second pass at 0.5x); see
# cyc_resnet38_synthvoc_ssenet.py. tools/run_pipeline.py sets
# model.cam_classifier_checkpoint.
_base_ = ['./cyc_resnet38_synthvoc_ssenet.py']
model = dict(
    cam_classifier=dict(scale_factor=0.5),
    cam_classifier_checkpoint=(
        'work_dirs/ssenet-halfscale_resnet38_synthvoc/epoch_40.pth'))
