# AffinityNet's classifier schedule: 8 epochs, SGD, poly (power 0.9) per
# iteration, weight decay 5e-4, the new 1x1 classifier at 10x lr.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.0, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=8,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=100)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # written through a rename (mmcyc.fileio.AtomicLocalBackend): a kill
    # while saving leaves no truncated epoch_N.pth
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1,
                    max_keep_ckpts=2,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # random states (dropout, the workers' augmentation) in every
    # checkpoint: a resumed run ends with an uninterrupted run's weights
    rng_state=dict(type='RNGStateHook'),
    visualization=dict(type='SegVisualizationHook'))
