# AffinityNet (stage 4): ResNet-38 taps 0, 1, 3 (512, 1024, 4096 channels at
# stride 8) -> 1x1 convs to 64, 128, 256 + ELU -> concat -> 1x1 448 + ELU
# (psa network/resnet38_aff.py); the random walk of infer_aff.py at test time.
_base_ = ['./cam_resnet38.py']  # the same data preprocessing as stage 1
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
    test_cfg=dict(
        bg_alpha=16,  # psa infer_aff.py --alpha: background (1 - max)^16
        stride=8,
        # psa infer_aff.py: beta 8, T squared logt = 8 times = 256 steps
        rw=dict(type='AffinityRWPostprocessor', radius=5, beta=8, steps=256)))
