# Copyright (c) mmcyc contributors. All rights reserved.
"""A translated copy of A as the return view of the cycle (option of Eq. 6-8).

Why. The paper's cycle goes A -> B -> A and asks the walk to come back to the
cell it left. A CNN knows where a cell is in its image (zero padding makes
every cell's features depend on its distance to the borders), so a feature
map that codes *absolute position* solves that task whatever the images
show: cell (i, j) of A matches cell (i, j) of B, which matches cell (i, j)
of A. Measured on the synthetic data (README, finding 3): after stage 2 with
the paper's loss, 46 % of the reference cells' cosine peaks in another image
fall on the very same grid cell (1.3-3.5 % with the classifier's features)
and the part correspondence drops from 35-40 % to 7-10 %.

The remedy. The walk returns to A' = A translated by a random whole number
of cells, ``(dy, dx)`` in ``[-m, m]^2`` per pair, the content moving with it
(:func:`shift_images`, zero fill, which is the mean colour after the data
preprocessor's normalisation). The start cell (i, j) of A is at (i + dy,
j + dx) in A' (:func:`shift_positions`): a walk that follows the content
comes back to it, a walk that follows absolute position misses it by the
shift. Shifting by whole stride blocks keeps psa's grid exact: cell (i, j)
covers pixels ``[s i, s i + s) x [s j, s j + s)`` in both views.
"""
from typing import Optional, Tuple

import torch


def draw_shifts(num: int,
                max_shift: int,
                device: Optional[torch.device] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Uniform integer cell shifts ``(dy, dx)`` in ``[-m, m]^2``.

    Args:
        num (int): N, one shift per pair.
        max_shift (int): m >= 1, in cells.
        device (torch.device, optional): Where the shifts live.
        generator (torch.Generator, optional): Defaults to torch's global
            generator (seeded by mmengine's ``randomness``).

    Returns:
        Tensor: int64, shape (N, 2).
    """
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or \
            max_shift < 1:
        raise ValueError(f'max_shift must be an int >= 1, got {max_shift!r}')
    return torch.randint(
        -max_shift, max_shift + 1, (num, 2), generator=generator,
        device=device)


def shift_images(images: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
    """Translate each image by its own pixel shift, filling with zeros.

    ``out[n, :, y, x] = images[n, :, y - dy_n, x - dx_n]`` where that pixel
    exists, else 0: positive shifts move the content down / right. One
    batched gather, no loop over the images.

    Args:
        images (Tensor): Shape (N, C, H, W).
        shift_px (Tensor): Integer ``(dy, dx)`` per image, shape (N, 2).

    Returns:
        Tensor: Shape (N, C, H, W), ``images``' dtype and device.
    """
    if images.dim() != 4 or shift_px.shape != (images.shape[0], 2):
        raise ValueError(f'images must be (N, C, H, W) and shift_px (N, 2), '
                         f'got {tuple(images.shape)} and '
                         f'{tuple(shift_px.shape)}')
    n, _, height, width = images.shape
    shift_px = shift_px.to(images.device, torch.long)
    rows = torch.arange(height, device=images.device) - shift_px[:, :1]
    cols = torch.arange(width, device=images.device) - shift_px[:, 1:]
    inside = (((rows >= 0) & (rows < height))[:, :, None]
              & ((cols >= 0) & (cols < width))[:, None, :])  # (N, H, W)
    flat = (rows.clamp(0, height - 1)[:, :, None] * width +
            cols.clamp(0, width - 1)[:, None, :])  # (N, H, W)
    gathered = images.flatten(2).gather(
        2, flat.flatten(1)[:, None, :].expand(-1, images.shape[1], -1))
    gathered = gathered.view_as(images)  # (N, C, H, W)
    return gathered * inside[:, None].to(images.dtype)


def shift_positions(index: torch.Tensor, valid: torch.Tensor,
                    shift: torch.Tensor,
                    size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Where A's flat cells are in A' = A shifted by ``shift`` cells.

    Args:
        index (Tensor): Flat cells ``i * w + j`` of A, shape (N, S).
        valid (Tensor): Real entries, shape (N, S), bool.
        shift (Tensor): ``(dy, dx)`` in cells per pair, shape (N, 2).
        size (tuple[int, int]): The grid ``(h, w)`` of both views.

    Returns:
        tuple[Tensor, Tensor]: The flat cells ``(i + dy) * w + (j + dx)``
        (0 where invalid), shape (N, S), and ``valid`` without the cells
        shifted out of the view.
    """
    height, width = size
    shift = shift.to(index.device, torch.long)
    row = index // width + shift[:, :1]  # (N, S)
    col = index % width + shift[:, 1:]  # (N, S)
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    valid = valid & inside
    moved = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1))
    return moved.masked_fill(~valid, 0), valid
