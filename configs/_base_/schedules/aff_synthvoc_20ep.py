# AffinityNet's schedule (aff_8ep.py) on the embedded synthetic dataset:
# 20 epochs, validated once at the end.
_base_ = ['./aff_8ep.py']
max_epochs = 20  # 15 iterations an epoch at the default 240 images
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='PolyLR', power=0.9, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True)
]
default_hooks = dict(logger=dict(interval=15))
