# Stage 5 on the embedded synthetic dataset (CPU): mmseg's FCN
# (ResNet-18-V1c-D8) trained on stage 4's pseudo masks of train_aug, scored
# on val against the real SegmentationClass masks:
#   python tools/train.py configs/fcn_r18-d8_synthvoc-pseudo.py \
#       --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=DIR
#   python tools/test.py configs/fcn_r18-d8_synthvoc-pseudo.py CKPT
# DIR is a folder of <image>.png palette masks (PseudoMaskWriterHook); a
# relative DIR is read under data_root (mmengine joins data_prefix to it),
# so pass an absolute one. The default is tools/run_pipeline.py's output
# (the walked refined CAMs; pseudo_masks/rw holds the walked plain CAMs).
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    'mmseg::_base_/datasets/pascal_voc12.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py'
]
custom_imports = dict(imports=['mmcyc'], allow_failed_imports=False)
data_root = 'data/synthvoc'
pseudo_mask_dir = '{{fileDirname}}/../work_dirs/pipeline/pseudo_masks/rw_cyc'
crop_size = (96, 96)  # the whole synthetic image
# 2,880 iterations at batch 8 (96 epochs of train_aug's 240 images), about
# 8.5 min on one thread (machine D). Trained from scratch on 240 images, the
# net needs them: with the ground-truth SegmentationClassAug as the "pseudo"
# masks (an upper bound) on the default data/synthvoc (SynthVOC multi-part,
# dataset seed 0), val mIoU over training seeds 0-5 (machine D, 2026-12-01,
# num_workers=0) is 72.18 / 74.56 / 67.34 / 71.67 / 61.98 / 57.33 (67.51 +-
# 6.68): seeds 4 and 5 were still learning at the end (loss 0.19 against
# 0.14), so the spread is not solved, only the level. At 1,440 iterations
# (the former recipe) the training loss was still falling (0.35 at the end,
# 0.14 here) and val swung with the seed: 35.11 /
# 17.29 (num_workers=0), 20.94 / 24.56 / 17.84 (num_workers=2). Measured and
# not adopted (seeds 0 / 1, same settings): no auxiliary head 73.82 / 67.68
# (2,880 iterations) and 72.63 / 63.43 (2,160); at 1,440 iterations, lr 0.2
# with a 60-iteration warm-up 30.13 / 19.65, scale jitter 0.75-1.25 30.72 /
# 16.69; batch 4 for 2,880 iterations 28.46 and AdamW lr 1e-3 8.94 (seed 0).
# The checkpoints of seeds 0-3 on 600 val images (the val list extended with
# the generator's next images): 73.24 / 76.41 / 70.68 / 70.39 (72.68 +-
# 2.80), so the spread is the training's, not the 60-image val set's. On the
# earlier single-part (format-1) data the 1,440-iteration recipe reached
# 54.95 (seed 0) and 57.34 (seed 1).
max_iters = 2880
# BN, not SyncBN: CPU distributed runs (gloo) have no SyncBN; batch 8 a rank.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,  # no ImageNet weights offline: trained from scratch
    # ResNet-18-V1c-D8 at 1/4 width (16 base channels, 0.9 M parameters
    # against 12.8 M): 4x the iterations in the same time, and 240 images
    # are too few to train the full width from scratch
    backbone=dict(
        depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    # mmseg's FCNHead but for the logged acc_seg, taken with max instead of
    # topk: the same weights, and stage 5 a quarter faster on a CPU
    # (benchmarks/bench_seg_step.py)
    decode_head=dict(
        type='FastAccuracyFCNHead',
        in_channels=128,
        channels=64,
        num_classes=21,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        type='FastAccuracyFCNHead',
        in_channels=64,
        channels=32,
        num_classes=21,
        norm_cfg=norm_cfg))
# mmseg's VOC augmentation with the crop scaled from 512 to 96 px, without
# PhotoMetricDistortion: its hue jitter (+-36 degrees) would swap the
# synthetic classes, whose discriminative parts differ in hue by 18 degrees
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations'),  # label ids checked
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
# images are scored at their own 96 px size
test_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations'),  # label ids checked
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
# from scratch: stage 1's lr 0.1 and weight decay 1e-4 rather than mmseg's
# 0.01 / 5e-4 for ImageNet-initialised backbones.
optim_wrapper = dict(optimizer=dict(lr=0.1, weight_decay=1e-4))
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
    logger=dict(interval=120),
    # atomic checkpoint writes (mmcyc.fileio.AtomicLocalBackend), every
    # quarter of the training: an interrupted job resumes from the last one
    checkpoint=dict(
        interval=max_iters // 4,
        max_keep_ckpts=1,
        backend_args=dict(backend='atomic_local')),
    # random states in every checkpoint: exact resume
    rng_state=dict(type='RNGStateHook'))
randomness = dict(seed=0)
