# Stage 1 with SSENet on the embedded synthetic dataset (CPU, a few minutes):
# exactly the narrow from-scratch recipe of cam_resnet38_synthvoc.py (model,
# data, 40 epochs, SGD lr 0.1 with warm-up, EMA, test scales (2, 3)), so the
# only difference from the CAM row is SSENet's training loss
# (_base_/models/ssenet_resnet38.py: the reference's weights). The reference
# recipe (15 epochs at lr 0.01 from ImageNet weights, batch 16, crops of 448)
# is ssenet_resnet38_voc.py. At 96 px the 0.3 pass sees 28 px images: a 4x4
# stride-8 map.
_base_ = ['./cam_resnet38_synthvoc.py']
model = dict(
    type='SSENetClassifier',
    scale_factor=0.3,
    cls_loss_weights=(0.5, 0.5),
    loss_equivariance=dict(
        type='ScaleEquivarianceLoss', loss_weight=1.0, eps=1e-5))
