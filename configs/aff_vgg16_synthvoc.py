# Stage 4 with VGG-16 on the embedded synthetic dataset (CPU): AffinityNet
# trained on affinity labels from the stage-1 CAMs of train_aug, then the
# random walk on train. The CAM folders and the checkpoint that initialises
# the backbone default to tools/run_pipeline.py's outputs. The walk uses
# radius 2 and 16 steps on the 12x12 grid, for the reasons (measured with
# ResNet-38) given in configs/aff_resnet38_synthvoc.py.
_base_ = [
    './_base_/models/aff_vgg16.py', './_base_/datasets/synthvoc_aff.py',
    './_base_/schedules/aff_synthvoc_20ep.py', './_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(size=(96, 96)),
    backbone=dict(
        # the synthetic classifier's narrow, trainable VGG16d (with BN, as
        # stage 1; see configs/cam_vgg16_synthvoc.py); no ImageNet weights
        # offline, so it starts from the stage-1 classifier's backbone. fc6
        # keeps psa's dilation 4: its weights are a 3x3 kernel either way
        widen_factor=0.125,
        norm_cfg=dict(type='BN'),
        frozen_stages=-1,
        dropout_fc6=0.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/pipeline/cam/epoch_40.pth',
            prefix='backbone.')),
    test_cfg=dict(rw=dict(radius=2, steps=16)))
# psa's parameter groups, as configs/aff_vgg16_voc.py (which explains them)
optim_wrapper = dict(paramwise_cfg=dict(
    bias_lr_mult=2.0, bias_decay_mult=0.0, custom_keys={
        'embed_head.projs': dict(lr_mult=10.0),
        'embed_head.fuse': dict(lr_mult=10.0)}))
