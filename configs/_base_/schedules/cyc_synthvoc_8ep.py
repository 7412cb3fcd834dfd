# The CyCSNet schedule (cyc_8ep.py) on the embedded synthetic dataset: its
# 8 epochs, logged every 5 iterations.
_base_ = ['./cyc_8ep.py']
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='StepLR', step_size=1, gamma=0.5, by_epoch=True, begin=0,
         end=max_epochs)
]
default_hooks = dict(logger=dict(interval=5))
