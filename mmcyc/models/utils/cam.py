# Copyright (c) mmcyc contributors. All rights reserved.
"""Class activation maps as pure tensor functions (paper Eq. 1-2).

The chain used by every CAM source is::

    class_activation_map -> multi_scale_cam -> mask_cam_by_label
        -> normalize_cam -> cam_to_mask
"""
from typing import Callable, Sequence, Tuple

import torch
import torch.nn.functional as F


def class_activation_map(features: torch.Tensor,
                         weight: torch.Tensor) -> torch.Tensor:
    """Eq. 1 followed by ReLU: ``relu(W_c^T f(x, y))`` at every position.

    Args:
        features (Tensor): Feature map ``f``, shape (N, D, h, w).
        weight (Tensor): 1x1 classifier weight ``W``, shape (C, D, 1, 1) or
            (C, D).

    Returns:
        Tensor: Un-normalised CAM, shape (N, C, h, w).
    """
    weight = weight.reshape(weight.shape[0], -1)  # (C, D)
    cam = torch.einsum('ndhw,cd->nchw', features, weight.to(features.dtype))
    return F.relu(cam)


def normalize_cam(cam: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Eq. 2: divide each class map by its spatial maximum (+ ``eps``).

    Computed in fp32. All-zero maps stay zero.

    Args:
        cam (Tensor): Non-negative maps, shape (N, C, H, W).
        eps (float): Added to the maximum, as the reference code does.

    Returns:
        Tensor: Normalised maps in [0, 1), shape (N, C, H, W), fp32.
    """
    cam = cam.float()
    peak = cam.flatten(2).amax(dim=2)[..., None, None]  # (N, C, 1, 1)
    return cam / (peak + eps)


def mask_cam_by_label(cam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Zero the maps of classes absent from the image-level label.

    Args:
        cam (Tensor): Maps, shape (N, C, H, W).
        labels (Tensor): Multi-hot labels, shape (N, C).

    Returns:
        Tensor: ``cam * labels``, shape (N, C, H, W).
    """
    return cam * labels.to(cam.dtype)[..., None, None]


def cam_to_mask(cam: torch.Tensor, bg_score: float = 0.2) -> torch.Tensor:
    """Turn normalised CAMs into a label map with a constant background score.

    The background score is put in front of the C class maps and the argmax
    taken, so label 0 is background and label ``c + 1`` is class channel c.

    Args:
        cam (Tensor): Normalised maps, shape (N, C, H, W).
        bg_score (float): Constant background score. Defaults to 0.2 (paper).

    Returns:
        Tensor: Label map, shape (N, H, W), int64.
    """
    bg = cam.new_full((cam.shape[0], 1, *cam.shape[2:]), bg_score)
    return torch.cat([bg, cam], dim=1).argmax(dim=1)  # (N, H, W)


def multi_scale_cam(cam_fn: Callable[[torch.Tensor], torch.Tensor],
                    inputs: torch.Tensor,
                    scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
                    flip: bool = True,
                    resize_mode: str = 'bilinear') -> torch.Tensor:
    """Sum of CAMs over scales and horizontal flips, at the input size.

    Each scaled (and flipped) input goes through ``cam_fn``; every result is
    flipped back and upsampled bilinearly to the input size before summing,
    as AffinityNet's ``infer_cls.py`` does. The flipped copy shares one batch
    with the original.

    Args:
        cam_fn (callable): Maps inputs (N, 3, h, w) to CAMs (N, C, h', w').
        inputs (Tensor): Normalised images, shape (N, 3, H, W).
        scales (Sequence[float]): Image scales. Defaults to the reference
            (1.0, 0.5, 1.5, 2.0).
        flip (bool): Whether to add the horizontally flipped image.
        resize_mode (str): Interpolation used to rescale the image.

    Returns:
        Tensor: Summed CAMs, shape (N, C, H, W), fp32.
    """
    if len(scales) == 0:
        raise ValueError('scales must hold at least one scale')
    n, _, height, width = inputs.shape
    total = None
    for scale in scales:
        size: Tuple[int, int] = (max(1, round(height * scale)),
                                 max(1, round(width * scale)))
        scaled = inputs if size == (height, width) else F.interpolate(
            inputs, size=size, mode=resize_mode, align_corners=False)
        if flip:
            scaled = torch.cat([scaled, scaled.flip(-1)], dim=0)  # (2N, 3, h, w)
        cam = cam_fn(scaled).float()
        cam = F.interpolate(
            cam, size=(height, width), mode='bilinear', align_corners=False)
        if flip:
            cam = cam[:n] + cam[n:].flip(-1)  # (N, C, H, W)
        total = cam if total is None else total + cam
    return total
