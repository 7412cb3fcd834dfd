# AffinityNet (stage 4): ResNet-38 taps 0, 1, 3 (512, 1024, 4096 channels at
# stride 8) -> 1x1 convs to 64, 128, 256 + ELU -> concat -> 1x1 448 + ELU
# (psa network/resnet38_aff.py); the random walk of infer_aff.py at test time.
# the same data preprocessing as stage 1; the random walk at test time
_base_ = ['./cam_resnet38.py', './affinity_test.py']
model = dict(
    _delete_=True,
    type='AffinityNet',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='ResNet38',
        out_indices=(0, 1, 3),
        # psa freezes conv1a + b2 and every BatchNorm
        frozen_stages=1,
        norm_eval=True,
        # psa trains AffinityNet from the ImageNet weights, not from the
        # classifier (converted by tools/model_converters/psa2mmcyc.py)
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/resnet38d_imagenet.pth',
            prefix='backbone.')),
    embed_head=dict(
        type='AffinityEmbedHead',
        proj_channels=(64, 128, 256),
        radius=5,  # pairs within radius 5: 34 offsets of a half disk
        # psa train_aff.py: bg/4 + fg/4 + neg/2
        loss_weights=(0.25, 0.25, 0.5)),
    num_classes=20,
    test_cfg={{_base_.aff_test_cfg}})
