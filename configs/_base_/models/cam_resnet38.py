# ResNet-38 CAM classifier (AffinityNet's resnet38_cls).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(448, 448))  # training batches are padded to the crop size
model = dict(
    type='CAMClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet38',
        out_indices=(3, ),
        # the reference freezes conv1a + b2 and every BatchNorm
        frozen_stages=1,
        norm_eval=True,
        # ImageNet weights converted by tools/model_converters/psa2mmcyc.py
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/resnet38d_imagenet.pth',
            prefix='backbone.')),
    num_classes=20,
    dropout_ratio=0.5,
    loss_cls=dict(type='MultiLabelSoftMarginLoss', loss_weight=1.0),
    test_cfg=dict(
        scales=(1.0, 0.5, 1.5, 2.0), flip=True, bg_score=0.2,
        out_dir=None))
