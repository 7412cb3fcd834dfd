# Stage 4 with VGG-16 on the embedded synthetic dataset (CPU): AffinityNet
# trained on affinity labels from the stage-1 CAMs of train_aug, then the
# random walk on train. The CAM folders and the checkpoint that initialises
# the backbone default to tools/run_pipeline.py's outputs. The walk uses
# radius 2 and 16 steps on the 12x12 grid, for the reasons (measured with
# ResNet-38) given in configs/aff_resnet38_synthvoc.py.
_base_ = ['./aff_vgg16_voc.py']
data_root = 'data/synthvoc'
max_epochs = 20  # 15 iterations an epoch at the default 240 images
label_cam_dir = 'work_dirs/pipeline/cams/cam'
model = dict(
    data_preprocessor=dict(size=(96, 96)),
    backbone=dict(
        # the synthetic classifier's narrow, trainable VGG16d (with BN, as
        # stage 1; see configs/cam_vgg16_synthvoc.py); no ImageNet weights
        # offline, so it starts from the stage-1 classifier's backbone. fc6
        # keeps psa's dilation 4: its weights are a 3x3 kernel either way
        widen_factor=0.125,
        norm_cfg=dict(type='BN'),
        frozen_stages=-1,
        dropout_fc6=0.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/pipeline/cam/epoch_40.pth',
            prefix='backbone.')),
    test_cfg=dict(rw=dict(radius=2, steps=16)))
# 96 px images: no crop, flips only (as the stage-1 synthetic twin)
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    # psa's dense CRF on both score stacks, once per image (cached)
    dict(type='LoadAffinityScores', cam_dir=label_cam_dir, alpha_low=4,
         alpha_high=32, crf=dict(type='DenseCRF'),
         crf_cache_dir=label_cam_dir + '_crf'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackAffinityInputs', stride=8),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
# the CAMs the walk reads (tools/run_pipeline.py points it at its own)
test_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCAMFromFile', cam_dir=label_cam_dir, num_classes=20),
    dict(type='LoadPseudoMask', mask_dir=None, num_classes=20),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackImageLabelInputs'),
]
test_dataloader = dict(
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
val_dataloader = test_dataloader
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='PolyLR', power=0.9, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True)
]
default_hooks = dict(logger=dict(interval=15))
