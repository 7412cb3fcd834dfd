# Copyright (c) mmcyc contributors. All rights reserved.
"""Where references' ``W^f`` peaks land when they miss: two shortcuts.

The part-correspondence accuracy (:mod:`.correspondence`) says how often a
reference of part k finds part k in another image; when it does not, two
counts say where it went instead, the two ways in which a cycle A -> B -> A
can come back to its start without any semantic match (README, finding 3):

- **same cell**: the peak in t is at the reference's own grid position
  (i, j) in s, i.e. F codes absolute position (chance: one cell of
  h_t * w_t);
- **background**: the peak is on a cell of t that is mostly background
  (object fraction below one half).

Both are counted for the raw products ``V . F_t`` (Eq. 3, the peak of
``W^f``) or, with ``cosine=True``, for cosine similarities: a feature map
with a large component shared by every cell hides a positional code from
the raw products (the peak follows the cells' norms) but not from the
cosine.
"""
import torch
import torch.nn.functional as F


def peak_shortcut_counts(feat_s: torch.Tensor,
                         ref_cells: torch.Tensor,
                         feat_t: torch.Tensor,
                         object_frac_t: torch.Tensor,
                         cosine: bool = False) -> torch.Tensor:
    """Counts of references peaking at their own cell and on background.

    Args:
        feat_s (Tensor): Source features, shape (D, h_s, w_s).
        ref_cells (Tensor): Flat reference cells ``i * w_s + j`` of s,
            shape (S, ).
        feat_t (Tensor): Target features, shape (D, h_t, w_t).
        object_frac_t (Tensor): Fraction of each cell of t on an object of
            any class, shape (h_t, w_t) (``cells_to_grid`` of the object
            mask).
        cosine (bool): Peaks of cosine similarities instead of the raw
            products. Defaults to False.

    Returns:
        Tensor: int64 ``[same_cell, background, count]``, shape (3, ),
        ``count = S``, on ``feat_t``'s device.
    """
    if feat_s.dim() != 3 or feat_t.dim() != 3 or \
            feat_s.shape[0] != feat_t.shape[0]:
        raise ValueError(f'feat_s and feat_t must be (D, h, w) with the same '
                         f'D, got {tuple(feat_s.shape)} and '
                         f'{tuple(feat_t.shape)}')
    if tuple(object_frac_t.shape) != tuple(feat_t.shape[1:]):
        raise ValueError(f'object_frac_t {tuple(object_frac_t.shape)} is not '
                         f"on the target's grid {tuple(feat_t.shape[1:])}")
    device = feat_t.device
    width_s, width_t = feat_s.shape[2], feat_t.shape[2]
    ref_cells = ref_cells.to(device).long()
    vectors = feat_s.flatten(1).to(device, torch.float32)[:, ref_cells].t()
    flat_t = feat_t.float().flatten(1)  # (D, h_t * w_t)
    if cosine:
        vectors = F.normalize(vectors, dim=1)  # (S, D)
        flat_t = F.normalize(flat_t, dim=0)
    peaks = (vectors @ flat_t).argmax(dim=1)  # (S, )
    same = ((peaks // width_t == ref_cells // width_s) &
            (peaks % width_t == ref_cells % width_s))
    background = object_frac_t.to(device).flatten()[peaks] < 0.5
    return torch.stack([same.sum(), background.sum(),
                        torch.tensor(len(ref_cells), device=device)])
