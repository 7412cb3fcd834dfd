# Stage 5 on the embedded synthetic dataset (CPU): a stock mmseg FCN
# (ResNet-18-V1c-D8) trained on stage 4's pseudo masks of train_aug, scored
# on val against the real SegmentationClass masks:
#   python tools/train.py configs/fcn_r18-d8_synthvoc-pseudo.py \
#       --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=DIR
#   python tools/test.py configs/fcn_r18-d8_synthvoc-pseudo.py CKPT
# DIR is a folder of <image>.png palette masks (PseudoMaskWriterHook); a
# relative DIR is read under data_root (mmengine joins data_prefix to it),
# so pass an absolute one. The default is tools/run_pipeline.py's output.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    'mmseg::_base_/datasets/pascal_voc12.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py'
]
data_root = 'data/synthvoc'
pseudo_mask_dir = '{{fileDirname}}/../work_dirs/pipeline/pseudo_masks'
crop_size = (96, 96)  # the whole synthetic image
max_iters = 480  # 16 epochs of train_aug's 240 images at batch 8; ~1.5 min
# BN, not SyncBN: CPU distributed runs (gloo) have no SyncBN; batch 8 a rank.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,  # no ImageNet weights offline: trained from scratch
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    # mmseg's fcn_r18-d8 head widths
    decode_head=dict(
        in_channels=512, channels=128, num_classes=21, norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=256, channels=64, num_classes=21, norm_cfg=norm_cfg))
# mmseg's VOC augmentation, scaled from 512 px crops to the 96 px images
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
# images are scored at their own 96 px size
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_mask_dir),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        pipeline=train_pipeline))
# val: the real masks (SegmentationClass, the base config's prefix)
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
# from scratch: a higher learning rate than mmseg's 0.01 for ImageNet
# initialised backbones
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=40), checkpoint=dict(interval=max_iters))
randomness = dict(seed=0)
