# A tiny CyCSNet config for the tool tests, on top of cam_tiny_synthvoc.py's
# classifier.
_base_ = ['../../configs/cyc_resnet38_synthvoc.py']
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(widen_factor=0.0625),
    # C = cam_tiny_synthvoc.py's model (its test_cfg is not used by C)
    cam_classifier=dict(backbone=dict(widen_factor=0.0625)))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False)
train_cfg = dict(max_epochs=2)
param_scheduler = [dict(type='StepLR', step_size=1, gamma=0.5, by_epoch=True,
                        begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1))
# The tool tests check what the tools do, not what CyCSNet learns; a tiny
# net two epochs from a barely trained classifier can meet one step whose
# L_cyc (about 270 on two references, Eq. 11's weights summing to 37) blows
# its features past fp16 (seen on machine C: the feature bank refused them),
# so every update is clipped here to keep the tests independent of the
# machine's floats.
optim_wrapper = dict(clip_grad=dict(max_norm=1.0))
