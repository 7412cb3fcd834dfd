# Copyright (c) mmcyc contributors. All rights reserved.
"""SSENet's scale equivariant regularisation between two passes' class maps.

Wang et al., "Self-supervised Scale Equivariant Network for Weakly Supervised
Semantic Segmentation", arXiv 1909.03714; the expression of the public code
(``YudeWang/SSENet-pytorch``, ``train_cls_ser.py``, ``loss_r``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


def max_normalize_cam(cam: torch.Tensor, labels: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    """SSENet's per-class normalisation of a raw class map.

    ``n(x) = relu(relu(x) - eps) / (max_hw relu(x) + eps) * y``: the positive
    part shifted down by ``eps``, divided by its spatial maximum, zero for
    the classes absent from the image label ``y``. Nothing is detached: the
    maximum passes its gradient to the position that attains it.

    Args:
        cam (Tensor): Raw (pre-ReLU) class map, shape (N, C, h, w).
        labels (Tensor): Multi-hot image labels in {0, 1}, shape (N, C).
        eps (float): The shift and the denominator's offset. Defaults to
            1e-5 (the reference).

    Returns:
        Tensor: The normalised map, shape (N, C, h, w), in [0, 1).
    """
    if cam.dim() != 4 or labels.shape != cam.shape[:2]:
        raise ValueError(f'expected cam (N, C, h, w) and labels (N, C), got '
                         f'{tuple(cam.shape)} and {tuple(labels.shape)}')
    positive = F.relu(cam)
    peak = positive.flatten(2).max(dim=2)[0] + eps  # (N, C)
    normed = F.relu(positive - eps) / peak[:, :, None, None]
    return normed * labels[:, :, None, None].to(cam.dtype)


def scale_equivariance_loss(cam_scaled: torch.Tensor,
                            cam_full: torch.Tensor,
                            labels: torch.Tensor,
                            eps: float = 1e-5) -> torch.Tensor:
    """``mean((n(cam_s) - n(down(cam)))^2)`` of SSENet's public code.

    ``cam_full`` is the raw map of the original input (upsampled to its
    size), ``cam_scaled`` that of the input rescaled by ``r`` (upsampled to
    the rescaled input's size); ``down`` resizes ``cam_full`` bilinearly
    (``align_corners=False``) to ``cam_scaled``'s size, which is the
    reference's ``F.interpolate(cam, scale_factor=r)`` as the PyTorch of its
    time (0.4-1.4) computed it: the output size ``floor(H r)`` and the
    coordinates mapped by the ratio of the two sizes. ``n`` is
    :func:`max_normalize_cam`; the mean runs over every element
    (N * C * h * w), absent classes included as zeros.

    Args:
        cam_scaled (Tensor): Raw map of the rescaled pass, shape
            (N, C, h, w).
        cam_full (Tensor): Raw map of the full-size pass, shape
            (N, C, H, W).
        labels (Tensor): Multi-hot image labels in {0, 1}, shape (N, C).
        eps (float): See :func:`max_normalize_cam`. Defaults to 1e-5.

    Returns:
        Tensor: Scalar loss; gradients reach both maps.
    """
    if cam_full.dim() != 4 or cam_scaled.shape[:2] != cam_full.shape[:2]:
        raise ValueError('expected cam_scaled (N, C, h, w) and cam_full '
                         f'(N, C, H, W), got {tuple(cam_scaled.shape)} and '
                         f'{tuple(cam_full.shape)}')
    cam_down = F.interpolate(cam_full, size=cam_scaled.shape[2:],
                             mode='bilinear', align_corners=False)
    diff = (max_normalize_cam(cam_scaled, labels, eps) -
            max_normalize_cam(cam_down, labels, eps))  # (N, C, h, w)
    return diff.pow(2).mean()


@MODELS.register_module()
class ScaleEquivarianceLoss(nn.Module):
    """SSENet's scale equivariant regularisation as a registered loss.

    See :func:`scale_equivariance_loss`.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0 (the
            reference adds it unweighted).
        eps (float): Shift and offset of the max normalisation. Defaults to
            1e-5 (the reference).
        loss_name (str): Key of the loss in the loss dict; must start with
            ``loss_`` so mmengine sums it. Defaults to ``'loss_ser'``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 eps: float = 1e-5,
                 loss_name: str = 'loss_ser'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(
                f'loss_name must start with "loss_", got {loss_name!r}')
        if loss_weight < 0:
            raise ValueError(f'loss_weight must be >= 0, got {loss_weight}')
        if eps <= 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        self.loss_weight = loss_weight
        self.eps = eps
        self._loss_name = loss_name

    def forward(self, cam_scaled: torch.Tensor, cam_full: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """``loss_weight`` times the loss of maps (N, C, h, w) and
        (N, C, H, W) and labels (N, C)."""
        return self.loss_weight * scale_equivariance_loss(
            cam_scaled, cam_full, labels, self.eps)

    @property
    def loss_name(self) -> str:
        return self._loss_name
