# AffinityNet's schedule (psa train_aff.py: 8 epochs, lr 0.1, wd 5e-4):
# psa's PolyOptimizer, i.e. SGD whose weight decay lands in SGD's momentum
# slot (5e-4, i.e. none), poly power 0.9 per iteration. The parameter groups
# differ per network: each aff config states its own paramwise_cfg.
_base_ = ['./cam_8ep.py']
optim_wrapper = dict(
    optimizer=dict(lr=0.1), paramwise_cfg=dict(_delete_=True))
