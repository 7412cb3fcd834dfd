# VOC 2012 + SBD for AffinityNet (stage 4): affinity labels from the CAMs of
# train_aug, the random walk of the CAMs of train scored on VOC train.
# label_cam_dir holds the CAM files of train_aug (stage 1b, or the refined
# CAMs of stage 3); rw_cam_dir the CAMs to propagate (train for scoring).
_base_ = ['./voc12_cls.py']
label_cam_dir = 'work_dirs/cams'
rw_cam_dir = 'work_dirs/cams'
# psa train_aff.py defaults: crop 448, batch 8 (its README runs ResNet-38
# with --crop_size 256 instead, VGG-16 with 448).
crop_size = (448, 448)
# psa VOC12AffDataset: no resize; crop (zero-filled when the image is
# smaller) and flip jointly with the score maps, colour jitter; the
# confident label map comes from the cropped maps pooled by 8.
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    # psa infer_cls.py: both score stacks refined by a dense CRF, computed
    # once per image (cached) rather than every epoch
    dict(type='LoadAffinityScores', cam_dir=label_cam_dir, alpha_low=4,
         alpha_high=32, crf=dict(type='DenseCRF'),
         crf_cache_dir=label_cam_dir + '_crf'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackAffinityInputs', stride=8),
]
# The random walk runs on the original image (padded to a multiple of 8 in
# the model), as psa's infer_aff.py. The model reads no file: the CAM to
# walk comes with the sample, and a mask an earlier run wrote is read back
# (tools/test.py --pseudo-mask-dir sets mask_dir), so a walk resumes.
test_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCAMFromFile', cam_dir=rw_cam_dir, num_classes=20),
    dict(type='LoadPseudoMask', mask_dir=None, num_classes=20),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackImageLabelInputs'),
]
train_dataloader = dict(
    batch_size=8, dataset=dict(pipeline=train_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU'])]
val_evaluator = test_evaluator
