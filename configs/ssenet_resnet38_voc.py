# Stage 1 with SSENet (the paper's Table 1 "SEENet" row) on PASCAL VOC 2012
# (GPU): Wang et al. 2019, arXiv 1909.03714, recipe of YudeWang/SSENet-pytorch
# train_cls_ser.py (ResNet-38 from ImageNet weights, batch 16, 15 epochs,
# lr 0.01 poly, weight decay 5e-4; random long side 448-768, flip, colour
# jitter, crop 448: the pipeline of voc12_cls.py), then CAMs as in stage 1:
#   python tools/train.py configs/ssenet_resnet38_voc.py
#   python tools/test.py configs/ssenet_resnet38_voc.py CKPT --cam-dir CAM_DIR
# CyCSNet reads its checkpoint through cyc_resnet38_voc.py's
# model.cam_classifier_checkpoint (C's modules are the same; CyCSNet only
# runs C's inherited ``cam``).
_base_ = [
    './_base_/models/ssenet_resnet38.py', './_base_/datasets/voc12_cls.py',
    './_base_/schedules/ssenet_15ep.py', './_base_/default_runtime.py'
]
train_dataloader = dict(batch_size=16)  # the reference's batch_size
