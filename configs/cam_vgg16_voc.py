# Stage 1 on PASCAL VOC 2012 (GPU): VGG-16 classifier (psa vgg16_cls), then
# CAMs (sqrt(relu(.)), psa's VGG CAM) with
#   python tools/train.py configs/cam_vgg16_voc.py
#   python tools/test.py configs/cam_vgg16_voc.py CKPT --cam-dir CAM_DIR
# psa's published VGG-16 CAM: 48.9 mIoU on train, 46.6 on val (its README).
_base_ = [
    './_base_/models/cam_vgg16.py', './_base_/datasets/voc12_cls.py',
    './_base_/schedules/cam_8ep.py', './_base_/default_runtime.py'
]
# psa README, stage 1: train_cls.py --lr 0.1 --batch_size 16
# --max_epoches 15 --crop_size 448 --wt_dec 5e-4
max_epochs = 15
crop_size = (448, 448)
# psa train_cls.py: long side random in [256, 512], flip, colour jitter
# (0.3, 0.3, 0.3, 0.1), crop 448 (an image smaller than the crop is padded
# with the mean, here by the data preprocessor at the bottom / right rather
# than at a random offset)
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(
        type='RandomResize',
        scale=(512, 512),
        ratio_range=(0.5, 1.0),
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackImageLabelInputs'),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
# psa PolyOptimizer (torchutils.py): SGD whose weight decay lands in the
# momentum slot (5e-4, i.e. none); per group: weights lr with wd 5e-4,
# biases 2x lr without wd, the new fc8 (classifier, no bias) 10x lr; poly
# power 0.9 per iteration
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.0, weight_decay=5e-4),
    paramwise_cfg=dict(
        bias_lr_mult=2.0,
        bias_decay_mult=0.0,
        custom_keys={'classifier': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
