# The CAM classifier (AffinityNet's *_cls) without its backbone, which each
# cam_<backbone>.py adds: 20 VOC classes, the multi-label soft-margin loss
# and psa's CAM inference.
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
    num_classes=20,
    dropout_ratio=0.5,
    loss_cls=dict(type='MultiLabelSoftMarginLoss', loss_weight=1.0),
    # psa infer_cls.py: scales 1, 0.5, 1.5, 2 with flips, background 0.2
    # (the model writes no file: CAMWriterHook / tools/test.py --cam-dir)
    test_cfg=dict(scales=(1.0, 0.5, 1.5, 2.0), flip=True, bg_score=0.2))
