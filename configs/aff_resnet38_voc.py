# Stage 4 on PASCAL VOC 2012 (GPU): AffinityNet trained on labels from CAMs,
# then the random walk turns CAMs into pseudo masks scored on VOC train:
#   python tools/train.py configs/aff_resnet38_voc.py
#   python tools/test.py configs/aff_resnet38_voc.py CKPT
# The CAM folders: label_cam_dir and rw_cam_dir (_base_/datasets/voc12_aff.py).
_base_ = [
    './_base_/models/aff_resnet38.py', './_base_/datasets/voc12_aff.py',
    './_base_/schedules/aff_8ep.py', './_base_/default_runtime.py'
]
# psa train_aff.py defaults: lr 0.1 (its README runs ResNet-38 with --lr
# 0.07 instead); psa's parameter groups: new layers at 10x lr.
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'embed_head': dict(lr_mult=10.0)}))
