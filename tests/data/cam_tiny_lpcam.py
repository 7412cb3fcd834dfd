# The tiny stage-1 config for the LPCAM pipeline test: one epoch at a tiny lr
# keeps the classifier near its random start, whose CAMs are not all zero
# (two epochs of cam_tiny_synthvoc.py's recipe leave every CAM at 0 after
# the ReLU, and an empty class set gives LPCAM nothing to cluster).
_base_ = ['./cam_tiny_synthvoc.py']
optim_wrapper = dict(optimizer=dict(lr=1e-5))
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='PolyLR', power=0.9, by_epoch=True, begin=0,
                        end=1, convert_to_iter_based=True)]
custom_hooks = []
