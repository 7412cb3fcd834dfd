# Stage 2 on the embedded synthetic dataset after SSENet's stage 1
# (configs/pipeline_synthvoc_ssenet.py): cyc_resnet38_synthvoc.py with C =
# the model of configs/ssenet_resnet38_synthvoc.py. C's modules, hence the
# checkpoint, are a CAMClassifier's and CyCSNet only runs C's inherited
# ``cam``, so C built as a plain CAMClassifier would load and behave the
# same; C is stated as the stage-1 model because
# tests/test_configs/test_model_configs.py checks that C is the model its
# checkpoint was trained with. tools/run_pipeline.py sets
# model.cam_classifier_checkpoint.
_base_ = ['./cyc_resnet38_synthvoc.py']
model = dict(
    cam_classifier=dict(
        type='SSENetClassifier',
        scale_factor=0.3,
        cls_loss_weights=(0.5, 0.5),
        loss_equivariance=dict(
            type='ScaleEquivarianceLoss', loss_weight=1.0, eps=1e-5)),
    cam_classifier_checkpoint=(
        'work_dirs/ssenet_resnet38_synthvoc/epoch_40.pth'))
