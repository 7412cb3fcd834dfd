# A tiny stage-5 config for the tool tests: the synthetic FCN for 4 iterations
# on 64 px images.
_base_ = ['../../configs/fcn_r18-d8_synthvoc-pseudo.py']
crop_size = (64, 64)
max_iters = 4
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations'),  # label ids checked
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# the weights averaged from iteration 2 (the resume test kills and resumes a
# run while it averages), BatchNorm statistics averaged too as in the
# shipped config
custom_hooks = [
    dict(type='EMAHook', momentum=0.5, begin_iter=2, update_buffers=True)
]
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=max_iters))
