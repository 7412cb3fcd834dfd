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
# The augmentation is the base config's train_pipeline, unchanged.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_mask_dir),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        pipeline={{_base_.train_pipeline}}))
# val / test: the base config's VOC val with SegmentationClass, IoUMetric.
