# Stage 1 on the embedded synthetic dataset (CPU, minutes).
_base_ = [
    './_base_/models/cam_resnet38.py', './_base_/datasets/synthvoc_cls.py',
    './_base_/schedules/cam_8ep.py', './_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(size=(96, 96)),
    backbone=dict(
        # a narrow ResNet-38 (64 -> 8 base channels) trained from scratch:
        # no ImageNet weights offline, so BatchNorm must learn (norm_eval
        # False) and nothing is frozen.
        widen_factor=0.125,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    test_cfg=dict(scales=(1.0, 0.5, 1.5), flip=True))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
train_cfg = dict(max_epochs=8)
param_scheduler = [dict(type='PolyLR', power=0.9, by_epoch=True, begin=0,
                        end=8, convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=10))
