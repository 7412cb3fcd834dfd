# Stage 4 with VGG-16 on PASCAL VOC 2012 (GPU): AffinityNet (psa vgg16_aff)
# trained on labels from CAMs, then the random walk turns CAMs into pseudo
# masks scored on VOC train:
#   python tools/train.py configs/aff_vgg16_voc.py
#   python tools/test.py configs/aff_vgg16_voc.py CKPT
# The CAM folders: label_cam_dir and rw_cam_dir (_base_/datasets/voc12_aff.py).
# psa's published VGG-16 random walk: 59.6 mIoU on train, 54.0 on val.
# psa README, stage 3: train_aff.py --lr 0.1 --batch_size 8
# --max_epoches 8 --crop_size 448 --wt_dec 5e-4 (_base_/schedules/aff_8ep.py)
_base_ = [
    './_base_/models/aff_vgg16.py', './_base_/datasets/voc12_aff.py',
    './_base_/schedules/aff_8ep.py', './_base_/default_runtime.py'
]
# psa's parameter groups (vgg16_aff.get_parameter_groups): backbone weights
# and the GroupNorm weights at lr with wd 5e-4, biases 2x lr without wd, the
# new 1x1 convs f8_3/f8_4/f8_5/f9 (projs, fuse) at 10x. mmengine gives a
# norm's bias no bias_lr_mult, so the GroupNorm biases train at 1x (psa:
# 2x), without wd as in psa.
optim_wrapper = dict(
    paramwise_cfg=dict(
        bias_lr_mult=2.0,
        bias_decay_mult=0.0,
        custom_keys={
            'embed_head.projs': dict(lr_mult=10.0),
            'embed_head.fuse': dict(lr_mult=10.0)
        }))
