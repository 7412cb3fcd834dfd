# Stage 5 on PASCAL VOC 2012 (GPU): mmseg's own DeepLabV3+ R-101-D8 recipe
# (512x512 crops, 4 GPUs x 4 images, 20k iterations, ImageNet-initialised
# ResNet-101-V1c), trained on stage 4's pseudo masks of train_aug (10,582
# images) instead of the human masks, scored on VOC val with the real
# SegmentationClass masks:
#   python tools/train.py configs/deeplabv3plus_r101-d8_voc-pseudo.py
#   python tools/test.py configs/deeplabv3plus_r101-d8_voc-pseudo.py CKPT
# The pseudo masks are the <image>.png palette PNGs PseudoMaskWriterHook
# writes while AffinityNet's random walk runs on train_aug; another folder:
#   --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=DIR
# with DIR absolute (a relative one is read under data_root).
_base_ = ['mmseg::deeplabv3plus/'
          'deeplabv3plus_r101-d8_4xb4-20k_voc12aug-512x512.py']
pseudo_mask_dir = '{{fileDirname}}/../work_dirs/pseudo_masks'
# mmseg's voc12aug trains on train (SegmentationClass) + aug
# (SegmentationClassAug); here one dataset: train_aug with pseudo masks.
# The augmentation is the base config's train_pipeline with mmcyc's checked
# loaders (a missing file or a label id outside 0..20 and 255 is an error
# naming the file; mmseg's LoadAnnotations would train on it silently).
custom_imports = dict(imports=['mmcyc'], allow_failed_imports=False)
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Pad', size=crop_size),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackSegInputs')
]
# tools/test.py --tta: mmseg's multi-scale + flip test, its base config's
# tta_pipeline with the checked loaders (each image at 0.5-1.75 times its
# size, flipped and not; SegTTAModel averages the softmax of the 12 passes)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_resizes = [
    dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios
]
tta_flips = [
    dict(type='RandomFlip', prob=0., direction='horizontal'),
    dict(type='RandomFlip', prob=1., direction='horizontal')
]
tta_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            tta_resizes, tta_flips, [dict(type='LoadCheckedAnnotations')],
            [dict(type='PackSegInputs')]
        ])
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_mask_dir),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        pipeline=train_pipeline))
# val / test: the base config's VOC val with SegmentationClass, IoUMetric.
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# checkpoints written through a rename (mmcyc.fileio.AtomicLocalBackend): a
# kill while saving leaves no truncated iter_N.pth
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')),
    # random states in every checkpoint: exact resume
    rng_state=dict(type='RNGStateHook'))
