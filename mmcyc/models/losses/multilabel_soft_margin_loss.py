# Copyright (c) mmcyc contributors. All rights reserved.
"""Multilabel soft-margin loss of the image-level classifier (paper Eq. 12)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


def multilabel_soft_margin_loss(logits: torch.Tensor,
                                labels: torch.Tensor) -> torch.Tensor:
    """Eq. 12 averaged over classes and images.

    ``-mean_c [y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)]``, computed
    in fp32 with ``logsigmoid`` so large logits neither overflow nor give
    ``log(0)`` under AMP.

    Args:
        logits (Tensor): Class scores ``x``, shape (N, C).
        labels (Tensor): Multi-hot targets ``y`` in {0, 1}, shape (N, C).

    Returns:
        Tensor: Scalar loss.
    """
    if logits.shape != labels.shape:
        raise ValueError(f'logits {tuple(logits.shape)} and labels '
                         f'{tuple(labels.shape)} must have the same shape')
    logits = logits.float()
    labels = labels.float()
    per_class = -(labels * F.logsigmoid(logits) +
                  (1 - labels) * F.logsigmoid(-logits))  # (N, C)
    return per_class.mean()


@MODELS.register_module()
class MultiLabelSoftMarginLoss(nn.Module):
    """Multilabel soft-margin loss (Eq. 12) as a registered loss module.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Key of the loss in the loss dict; must start with
            ``loss_`` so mmengine sums it. Defaults to ``'loss_cls'``.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_cls'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(
                f'loss_name must start with "loss_", got {loss_name!r}')
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """Return ``loss_weight * Eq. 12`` for logits and labels (N, C)."""
        return self.loss_weight * multilabel_soft_margin_loss(logits, labels)

    @property
    def loss_name(self) -> str:
        return self._loss_name
