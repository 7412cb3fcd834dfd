# CyCSNet (stage 2): F = the classifier's ResNet-38 without its last block
# (through b6: 2048 channels at stride 8), initialised from the trained
# classifier C, which stays frozen and gives CAM_A; the cycle-consistency head
# and L_cls at lambda = 0.1 (Eq. 13).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(448, 448))
model = dict(
    type='CyCSNet',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet38',
        with_b7=False,
        out_indices=(2, ),
        frozen_stages=1,
        norm_eval=True),
    head=dict(
        type='CycleConsistencyHead',
        alpha=20.0,  # Eq. 4 and 7 (paper: h*w ~ 3000 at 448^2)
        beta1=0.3,  # CAM_A threshold selecting V_(x,y)
        radius=5,  # r of Eq. 11, in squared-distance units
        loss_weight=1.0),
    # C = the stage-1 model of this config, with the weights it trained;
    # the checkpoint also initialises F
    cam_classifier='{{fileDirname}}/../../cam_resnet38_voc.py',
    cam_classifier_checkpoint='work_dirs/cam_resnet38_voc/epoch_8.pth',
    num_classes=20,
    dropout_ratio=0.5,
    loss_cls=dict(type='MultiLabelSoftMarginLoss', loss_weight=0.1))
