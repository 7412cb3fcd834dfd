# CyCSNet schedule (paper Sect. 4.1): SGD, lr 0.01 halved every epoch. The
# paper gives no epoch count; 8 follows AffinityNet's stage-1 schedule (the
# lr is 0.01 / 128 in the last epoch).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='StepLR', step_size=1, gamma=0.5, by_epoch=True, begin=0,
         end=8)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=100)
val_cfg = None
test_cfg = None
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
    rng_state=dict(type='RNGStateHook'))
custom_hooks = [
    # beta2 of DCFS (Eq. 9): starts at 0, momentum kappa = 0.95, averaged
    # over ranks, saved in checkpoints
    dict(type='DCFSHook', mode='momentum', kappa=0.95, init_value=0.0,
         target='head.beta2')
]
