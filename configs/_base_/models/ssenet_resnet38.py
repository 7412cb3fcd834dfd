# SSENet (Wang et al. 2019, arXiv 1909.03714; YudeWang/SSENet-pytorch,
# network/resnet38_cls_ser.py + train_cls_ser.py): the ResNet-38 CAM
# classifier of cam_resnet38.py (same modules, so its checkpoint loads into
# a CAMClassifier and into CyCSNet's C and F), trained on each batch and on
# the batch rescaled by 0.3 with the scale equivariant regularisation.
# Inference (scales, flips, Bg) is CAMClassifier's, unchanged.
_base_ = ['./cam_resnet38.py']
model = dict(
    type='SSENetClassifier',
    scale_factor=0.3,  # the reference's branch_rate
    # loss = L_cls(full) / 2 + L_cls(0.3) / 2 + loss_r (the reference)
    cls_loss_weights=(0.5, 0.5),
    loss_equivariance=dict(
        type='ScaleEquivarianceLoss', loss_weight=1.0, eps=1e-5))
