from .multilabel_soft_margin_loss import (MultiLabelSoftMarginLoss,
                                          multilabel_soft_margin_loss)
from .pixel_accuracy import pixel_accuracy
from .scale_equivariance_loss import (ScaleEquivarianceLoss,
                                      max_normalize_cam,
                                      scale_equivariance_loss)

__all__ = [
    'MultiLabelSoftMarginLoss', 'multilabel_soft_margin_loss',
    'pixel_accuracy',
    'ScaleEquivarianceLoss', 'max_normalize_cam', 'scale_equivariance_loss'
]
