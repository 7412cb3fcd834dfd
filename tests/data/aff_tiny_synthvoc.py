# A tiny AffinityNet config for the tool tests (64 px, very narrow).
_base_ = ['../../configs/aff_resnet38_synthvoc.py']
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(widen_factor=0.0625))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)
val_dataloader = test_dataloader
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='PolyLR', power=0.9, by_epoch=True, begin=0,
                        end=2, convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=1))
