# SSENet's classifier schedule (train_cls_ser.py): AffinityNet's (cam_8ep.py:
# SGD lr 0.01, poly power 0.9 per iteration, weight decay 5e-4, the new 1x1
# classifier at 10x lr, no momentum: psa's PolyOptimizer passes the weight
# decay as SGD's momentum) for 15 epochs instead of 8.
_base_ = ['./cam_8ep.py']
max_epochs = 15
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
