# A tiny CAM config for the tool tests: the synthetic twin at 64 px, a very
# narrow ResNet-38 and one process-friendly dataloader.
_base_ = ['../../configs/cam_resnet38_synthvoc.py']
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(widen_factor=0.0625),
    test_cfg=dict(scales=(1.0, 0.5), flip=True))
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackImageLabelInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
test_dataloader = dict(num_workers=0, persistent_workers=False)
val_dataloader = test_dataloader
train_cfg = dict(max_epochs=2, val_interval=100)
param_scheduler = [dict(type='PolyLR', power=0.9, by_epoch=True, begin=0,
                        end=2, convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=3))
# the synthetic recipe's weight averaging, started and tracking within the
# 12 iterations (momentum 0.01 would leave the averaged weights near their
# initialisation, out of step with the BatchNorm statistics)
# (BatchNorm statistics averaged too, as in the synthetic recipe)
custom_hooks = [
    dict(type='EMAHook', momentum=0.5, begin_iter=2, update_buffers=True)
]
