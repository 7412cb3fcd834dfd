# Copyright (c) mmcyc contributors. All rights reserved.
"""Two crops of A as the start and the return view of the cycle (option).

Why. The paper's cycle goes A -> B -> A and asks the walk to come back to the
cell it left. A CNN knows where a cell is in its image (zero padding makes
every cell's features depend on its distance to the borders), so a feature
map that codes *absolute position* solves that task whatever the images
show: cell (i, j) of A matches cell (i, j) of B, which matches cell (i, j)
of A. Measured on the synthetic data (README, finding 3): after stage 2 with
L_cyc weighted 0.1, 77 % of the reference cells' cosine peaks in another
image fall on the very same grid cell (3.5 % with the classifier's
features) and the part correspondence drops from 35 to 8 %.

The remedy. The walk starts in one crop of A and returns to another, both
of size ``(H - s m, W - s m)``, at opposite corners of the square of offsets
``{0, .., m}^2`` (in whole cells): the start crop at a random corner ``o1``
(:func:`opposite_corners`), the return crop at ``o2 = (m, m) - o1``
(:func:`crop_images`); B is cropped the same way at an offset drawn in the
square (:func:`draw_offsets`). The start cell (i, j) of the first crop is
cell ``(i, j) + o1 - o2`` of the second (:func:`shift_positions`), with
``o1 - o2 = (+-m, +-m)``: a walk that follows the content comes back to it,
a walk that follows the position in the frame misses it by ``m sqrt(2)``
cells, outside the label map of Eq. 10-11 for r = 5 once m >= 2. Offsets
drawn independently (``o1 - o2`` often small or 0) left the positional code
much of its reward (seed 1, w = 0.1: 21 % of the peaks still on the own
cell against 1.5 % with opposite corners). Both views are crops of the image
itself, so neither has a border the other lacks: a zero-filled translated
copy (tried first) left the content's edge visible, by which the network
still found its way back (58-60 % of the peaks on the background). Offsets
in whole stride blocks keep psa's grid exact: cell (i, j) covers pixels
``[s i, s i + s) x [s j, s j + s)`` of its crop.

What it does not do: the references still drift to B's background (42-58 %
of the peaks against 18 % with the classifier's features), and the part
correspondence stays far below the classifier's (README, finding 3).
"""
from typing import Optional, Sequence, Tuple

import torch


def _check_max_shift(max_shift: int) -> None:
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or \
            max_shift < 1:
        raise ValueError(f'max_shift must be an int >= 1, got {max_shift!r}')


def draw_offsets(num: int,
                 max_shift: int,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Uniform crop offsets ``(oy, ox)`` in whole cells, in ``{0..m}^2``.

    Drawn on the CPU, like :func:`opposite_corners`: :func:`crop_images`
    checks CPU offsets without syncing a device.

    Args:
        num (int): N, one offset per image.
        max_shift (int): m >= 1, in cells.
        generator (torch.Generator, optional): Defaults to torch's global
            generator (seeded by mmengine's ``randomness``).

    Returns:
        Tensor: int64, shape (N, 2).
    """
    _check_max_shift(max_shift)
    return torch.randint(0, max_shift + 1, (num, 2), generator=generator)


def opposite_corners(
        num: int,
        max_shift: int,
        generator: Optional[torch.Generator] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Crop offsets at opposite corners of the square ``{0..m}^2`` (cells).

    Args:
        num (int): N, one pair of offsets per image.
        max_shift (int): m >= 1, in cells.
        generator (torch.Generator, optional): Defaults to torch's global
            generator.

    Returns:
        tuple[Tensor, Tensor]: int64 ``o1`` (a random corner: each
        coordinate 0 or m) and ``o2 = (m, m) - o1``, each of shape (N, 2).
    """
    _check_max_shift(max_shift)
    start = torch.randint(0, 2, (num, 2), generator=generator) * max_shift
    return start, max_shift - start


def crop_images(images: torch.Tensor, offset_px: torch.Tensor,
                size: Sequence[int]) -> torch.Tensor:
    """Crop each image at its own offset: one batched gather, no loop.

    ``out[n, :, y, x] = images[n, :, oy_n + y, ox_n + x]``.

    Args:
        images (Tensor): Shape (N, C, H, W).
        offset_px (Tensor): Integer ``(oy, ox)`` per image, shape (N, 2),
            with ``0 <= oy <= H - h`` and ``0 <= ox <= W - w`` (checked when
            on the CPU; on an accelerator the check would sync).
        size (Sequence[int]): ``(h, w)`` of the crops.

    Returns:
        Tensor: Shape (N, C, h, w), ``images``' dtype and device.
    """
    if images.dim() != 4 or tuple(offset_px.shape) != (images.shape[0], 2):
        raise ValueError(f'images must be (N, C, H, W) and offset_px (N, 2), '
                         f'got {tuple(images.shape)} and '
                         f'{tuple(offset_px.shape)}')
    n, channels, height, width = images.shape
    crop_h, crop_w = (int(v) for v in size)
    offset_px = offset_px.long()
    if n and offset_px.device.type == 'cpu' and (
            int(offset_px.min()) < 0
              or int(offset_px[:, 0].max()) + crop_h > height
              or int(offset_px[:, 1].max()) + crop_w > width):
        raise ValueError(f'crops of {crop_h} x {crop_w} at offsets '
                         f'{offset_px.tolist()} leave the {height} x {width} '
                         'images')
    offset_px = offset_px.to(images.device)
    rows = offset_px[:, :1] + torch.arange(crop_h, device=images.device)
    cols = offset_px[:, 1:] + torch.arange(crop_w, device=images.device)
    flat = rows[:, :, None] * width + cols[:, None, :]  # (N, h, w)
    gathered = images.flatten(2).gather(
        2, flat.flatten(1)[:, None, :].expand(-1, channels, -1))
    return gathered.view(n, channels, crop_h, crop_w)


def shift_positions(
        index: torch.Tensor, valid: torch.Tensor, shift: torch.Tensor,
        size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Where flat cells of one view are in a view shifted by ``shift`` cells.

    For crops at offsets ``o1`` (start) and ``o2`` (return), ``shift = o1 -
    o2``.

    Args:
        index (Tensor): Flat cells ``i * w + j`` of the start view, shape
            (N, S).
        valid (Tensor): Real entries, shape (N, S), bool.
        shift (Tensor): ``(dy, dx)`` in cells per pair, shape (N, 2).
        size (tuple[int, int]): The grid ``(h, w)`` of both views.

    Returns:
        tuple[Tensor, Tensor]: The flat cells ``(i + dy) * w + (j + dx)``
        (0 where invalid), shape (N, S), and ``valid`` without the cells
        that the return view does not show.
    """
    height, width = size
    shift = shift.to(index.device, torch.long)
    row = index // width + shift[:, :1]  # (N, S)
    col = index % width + shift[:, 1:]  # (N, S)
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    valid = valid & inside
    moved = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1))
    return moved.masked_fill(~valid, 0), valid
