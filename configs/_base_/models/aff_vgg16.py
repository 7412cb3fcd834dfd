# AffinityNet (stage 4) with VGG-16 (psa network/vgg16_aff.py): VGG16d taps
# 0, 1, 2 (relu of conv4_3, conv5_3, fc7: 512, 512, 1024 channels at stride
# 8) with fc6 dilated by 4 -> 1x1 convs to 64, 128, 256 -> GroupNorm (8, 16,
# 32 groups) -> ELU -> concat -> 1x1 448 + ELU; the random walk of
# infer_aff.py at test time.
# the same data preprocessing as stage 1; the random walk at test time
_base_ = ['./cam_vgg16.py', './affinity_test.py']
model = dict(
    _delete_=True,
    type='AffinityNet',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='VGG16d',
        out_indices=(0, 1, 2),
        fc6_dilation=4,  # psa vgg16_aff: Net(fc6_dilation=4)
        dropout_fc6=0.5,
        # psa freezes conv1_* and conv2_*
        frozen_stages=1,
        # psa trains AffinityNet from the ImageNet weights, not from the
        # classifier (converted by tools/model_converters/psa_vgg2mmcyc.py)
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/vgg16d_imagenet.pth',
            prefix='backbone.')),
    embed_head=dict(
        type='AffinityEmbedHead',
        proj_channels=(64, 128, 256),
        # psa gn8_3 / gn8_4 / gn8_5: 8 channels a group on every level
        norm_cfg=dict(type='GN', num_groups=(8, 16, 32)),
        radius=5,  # pairs within radius 5: 34 offsets of a half disk
        # psa train_aff.py: bg/4 + fg/4 + neg/2
        loss_weights=(0.25, 0.25, 0.5)),
    num_classes=20,
    test_cfg={{_base_.aff_test_cfg}})
