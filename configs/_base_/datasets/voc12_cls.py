# PASCAL VOC 2012 + SBD with image-level labels (AffinityNet's cls_labels.npy).
# data_root holds JPEGImages, SegmentationClassAug, ImageSets/Segmentation and
# cls_labels.npy; only image-level labels are used for training.
dataset_type = 'VOCImageLabelDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (448, 448)
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    # AffinityNet: random long side in [448, 768], flip, colour jitter, crop
    dict(
        type='RandomResize',
        scale=(768, 448),
        ratio_range=(0.58, 1.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackImageLabelInputs'),
]
# CAM inference: the original image; scales and flips happen in the model.
test_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackImageLabelInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        cls_label_file='cls_labels.npy',
        require_seg_map=False,
        pipeline=train_pipeline))
# Pseudo masks are scored on VOC train (1,464 images), as in the paper.
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train.txt',
        cls_label_file='cls_labels.npy',
        pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='CAMThresholdSweepMetric'),
]
val_evaluator = test_evaluator
