# Stage 4 with VGG-16 on PASCAL VOC 2012 (GPU): AffinityNet (psa vgg16_aff)
# trained on labels from CAMs, then the random walk turns CAMs into pseudo
# masks scored on VOC train:
#   python tools/train.py configs/aff_vgg16_voc.py
#   python tools/test.py configs/aff_vgg16_voc.py CKPT
# label_cam_dir holds the CAM files of train_aug (stage 1b, or the refined
# CAMs of stage 3); rw_cam_dir the CAMs to propagate (train for scoring).
# psa's published VGG-16 random walk: 59.6 mIoU on train, 54.0 on val.
_base_ = [
    './_base_/models/aff_vgg16.py', './_base_/datasets/voc12_cls.py',
    './_base_/schedules/cam_8ep.py', './_base_/default_runtime.py'
]
label_cam_dir = 'work_dirs/cams'
rw_cam_dir = 'work_dirs/cams'
# psa README, stage 3: train_aff.py --lr 0.1 --batch_size 8
# --max_epoches 8 --crop_size 448 --wt_dec 5e-4
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
# psa PolyOptimizer (vgg16_aff.get_parameter_groups): SGD (its weight decay
# lands in SGD's momentum slot: 5e-4, i.e. none), poly power 0.9 per
# iteration; backbone weights and the GroupNorm weights at lr with wd 5e-4,
# biases 2x lr without wd, the new 1x1 convs f8_3/f8_4/f8_5/f9 (projs, fuse)
# at 10x. mmengine gives a norm's bias no bias_lr_mult, so the GroupNorm
# biases train at 1x (psa: 2x), without wd as in psa.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.0, weight_decay=5e-4),
    paramwise_cfg=dict(
        _delete_=True,
        bias_lr_mult=2.0,
        bias_decay_mult=0.0,
        custom_keys={
            'embed_head.projs': dict(lr_mult=10.0),
            'embed_head.fuse': dict(lr_mult=10.0)
        }))
