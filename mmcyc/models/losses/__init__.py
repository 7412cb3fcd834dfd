from .multilabel_soft_margin_loss import (MultiLabelSoftMarginLoss,
                                          multilabel_soft_margin_loss)
from .scale_equivariance_loss import (ScaleEquivarianceLoss,
                                      max_normalize_cam,
                                      scale_equivariance_loss)

__all__ = [
    'MultiLabelSoftMarginLoss', 'multilabel_soft_margin_loss',
    'ScaleEquivarianceLoss', 'max_normalize_cam', 'scale_equivariance_loss'
]
