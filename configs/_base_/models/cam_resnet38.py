# ResNet-38 CAM classifier (AffinityNet's resnet38_cls).
_base_ = ['./cam_classifier.py']
model = dict(
    backbone=dict(
        type='ResNet38',
        out_indices=(3, ),
        # the reference freezes conv1a + b2 and every BatchNorm
        frozen_stages=1,
        norm_eval=True,
        # ImageNet weights converted by tools/model_converters/psa2mmcyc.py
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/resnet38d_imagenet.pth',
            prefix='backbone.')))
