# Copyright (c) mmcyc contributors. All rights reserved.
"""Class activation maps as pure tensor functions (paper Eq. 1-2).

The chain used by every CAM source is::

    class_activation_map -> multi_scale_cam -> mask_cam_by_label
        -> normalize_cam -> cam_to_mask

Between the image size (H, W) of a CAM and the stride-s feature grid
(h, w) of a network, AffinityNet's alignment is used in both directions
(psa pads the image at the bottom / right to a multiple of s, and feature
cell (i, j) covers the pixels ``[s i, s i + s) x [s j, s j + s)``):

    grid_stride       the stride s relating (H, W) and (h, w)
    pool_scores       image -> grid: average of each s x s block, the
                      missing rows / columns of the last blocks counted as
                      zeros (psa's pad-then-``avg_pool2d``)
    cam_to_grid       a CAM to a feature grid: unchanged at the grid's size,
                      else ``pool_scores`` with the stride of the two sizes
    grid_to_pixels    grid -> image: every pixel takes the value of the cell
                      that contains it (nearest, cell-aligned replication)
"""
import math
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


# The activations a CAM source may apply to Eq. 1's scores (see
# :func:`class_activation_map`).
CAM_ACTIVATIONS = ('relu', 'sqrt_relu')


def class_activation_map(features: torch.Tensor,
                         weight: torch.Tensor,
                         activation: str = 'relu') -> torch.Tensor:
    """Eq. 1 followed by an activation at every position.

    ``relu(W_c^T f(x, y))`` (``activation='relu'``, psa's ResNet-38
    ``forward_cam``) or ``sqrt(relu(W_c^T f(x, y)))`` (``'sqrt_relu'``,
    psa's VGG-16 ``vgg16_cls.forward_cam``). The square root's gradient is
    infinite at 0: CAMs are made without gradient (inference, CyCSNet's
    CAM_A).

    Args:
        features (Tensor): Feature map ``f``, shape (N, D, h, w).
        weight (Tensor): 1x1 classifier weight ``W``, shape (C, D, 1, 1) or
            (C, D).
        activation (str): One of :data:`CAM_ACTIVATIONS`. Defaults to
            'relu'.

    Returns:
        Tensor: Un-normalised CAM, shape (N, C, h, w).
    """
    if activation not in CAM_ACTIVATIONS:
        raise ValueError(f'activation must be one of {CAM_ACTIVATIONS}, got '
                         f'{activation!r}')
    weight = weight.reshape(weight.shape[0], -1)  # (C, D)
    cam = torch.einsum('ndhw,cd->nchw', features, weight.to(features.dtype))
    cam = F.relu(cam)
    return cam.sqrt() if activation == 'sqrt_relu' else cam


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


def grid_stride(size: Sequence[int],
                grid: Sequence[int],
                stride: Optional[int] = None) -> int:
    """The stride relating an image size (H, W) to a feature grid (h, w).

    psa's alignment: the image is padded at the bottom / right to
    ``(h * s, w * s)``, so ``(h - 1) s < H <= h s`` and the same for the
    width. Without ``stride``, ``s = max(ceil(H / h), ceil(W / w))``, the
    smallest stride consistent with both axes; it is the network's stride
    whenever the grid has at least s cells a side (ResNet-38: s = 8 and
    ``h = ceil(H / 8)``, so for ``h >= 8`` the inferred stride is 8). A
    smaller grid may fit several strides; pass the network's then.

    Args:
        size (Sequence[int]): The image-size (H, W).
        grid (Sequence[int]): The grid (h, w).
        stride (int, optional): The stride to check instead of inferring
            one. Defaults to None.

    Returns:
        int: s >= 1; 1 when ``size == grid``.

    Raises:
        ValueError: Naming both shapes, when no such stride exists (or the
            given one does not fit).
    """
    height, width = (int(v) for v in size)
    grid_h, grid_w = (int(v) for v in grid)
    if min(height, width, grid_h, grid_w) < 1:
        raise ValueError(f'empty map or grid: size {height}x{width}, grid '
                         f'{grid_h}x{grid_w}')
    if stride is None:
        stride = max(math.ceil(height / grid_h), math.ceil(width / grid_w))
    if isinstance(stride, bool) or not isinstance(stride, int) or \
            stride < 1 or not ((grid_h - 1) * stride < height <= grid_h *
                               stride and (grid_w - 1) * stride < width <=
                               grid_w * stride):
        raise ValueError(
            f'a {height}x{width} map does not lie on a {grid_h}x{grid_w} '
            f'feature grid with stride {stride!r}: psa\'s alignment needs '
            '(h - 1) * stride < H <= h * stride and the same for W')
    return stride


def pool_scores(scores: torch.Tensor, stride: int = 8) -> torch.Tensor:
    """Average-pool by ``stride``, zero-padding the bottom and right.

    Matches psa's ``block_reduce(img, (8, 8, 1), np.mean)`` and
    ``infer_aff.py``'s pad-then-``avg_pool2d``: a partial block is padded
    with zeros and still divided by ``stride^2``.

    Args:
        scores (Tensor): Maps, shape (..., H, W).
        stride (int): Block size. Defaults to 8.

    Returns:
        Tensor: fp32, shape (..., ceil(H / stride), ceil(W / stride)).
    """
    height, width = scores.shape[-2:]
    pad_h, pad_w = -height % stride, -width % stride
    lead = scores.shape[:-2]
    flat = scores.reshape(1, -1, height, width).float()  # (1, B, H, W)
    flat = F.pad(flat, (0, pad_w, 0, pad_h))
    pooled = F.avg_pool2d(flat, stride, stride)  # (1, B, h, w)
    return pooled.reshape(*lead, *pooled.shape[-2:])


def cam_to_grid(cam: torch.Tensor,
                grid: Sequence[int],
                stride: Optional[int] = None) -> torch.Tensor:
    """Bring CAMs to a feature grid (h, w) the way psa does.

    The one rule of mmcyc for a CAM at the image size (H, W) on the grid of
    a stride-s feature map: zero-pad the bottom / right to a multiple of s
    and average each s x s block (:func:`pool_scores`), so a feature cell
    gets the mean CAM over the pixels it covers rather than the CAM
    point-sampled near its centre. A CAM already at (h, w) (e.g. computed
    on the feature grid itself) is returned unchanged.

    Args:
        cam (Tensor): Maps, shape (..., H, W).
        grid (Sequence[int]): The grid (h, w).
        stride (int, optional): s; inferred by :func:`grid_stride` when
            None. Defaults to None.

    Returns:
        Tensor: Shape (..., h, w); ``cam`` itself when (H, W) = (h, w),
        else fp32.

    Raises:
        ValueError: Naming both shapes when (H, W) does not lie on the grid
            (:func:`grid_stride`), e.g. a CAM coarser than the grid.
    """
    if tuple(cam.shape[-2:]) == tuple(grid) and stride in (None, 1):
        return cam
    stride = grid_stride(cam.shape[-2:], grid, stride)
    return pool_scores(cam, stride)  # (..., h, w)


def grid_to_pixels(maps: torch.Tensor,
                   size: Sequence[int],
                   stride: Optional[int] = None) -> torch.Tensor:
    """Nearest, cell-aligned upsampling of a feature grid to (H, W).

    Pixel (y, x) takes the value of cell ``(y // s, x // s)``, the cell that
    contains it in psa's alignment; the cells' part beyond (H, W) (the
    padding) is dropped. Being a per-pixel selection, it commutes with any
    element-wise operation and with maxima over maps.

    Args:
        maps (Tensor): Maps on the grid, shape (..., h, w).
        size (Sequence[int]): (H, W).
        stride (int, optional): s; inferred by :func:`grid_stride` when
            None. Defaults to None.

    Returns:
        Tensor: Shape (..., H, W), ``maps``' dtype; ``maps`` itself when
        (H, W) = (h, w).

    Raises:
        ValueError: Naming both shapes when (H, W) does not lie on the grid.
    """
    height, width = (int(v) for v in size)
    if tuple(maps.shape[-2:]) == (height, width) and stride in (None, 1):
        return maps
    stride = grid_stride((height, width), maps.shape[-2:], stride)
    rows = torch.arange(height, device=maps.device) // stride  # (H, )
    cols = torch.arange(width, device=maps.device) // stride  # (W, )
    return maps.index_select(-2, rows).index_select(-1, cols)  # (..., H, W)
