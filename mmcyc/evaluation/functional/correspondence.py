# Copyright (c) mmcyc contributors. All rights reserved.
"""Part-correspondence accuracy of a feature map, as pure tensor functions.

CyCSNet's central claim (paper Sect. 3.2-3.3, Fig. 3) is that a vector of
F taken on a part of an object in one image finds the *same part* of an
object of its class in another image: the peak of its similarity map
``W^f`` (Eq. 3-4) lands there. Where the parts are known (SynthVOC's part
maps, see :mod:`mmcyc.datasets.synthvoc`) this can be counted.

For an image pair (s, t) and every class c and part k:

- **references**: the feature cells of s *on part k of class c* whose
  stage-1 CAM ``C^s_c`` exceeds ``beta1`` (0.3, as in Alg. 1-2): cells with
  a part fraction >= ``min_fraction`` (0.5) and a pooled CAM_c > beta1;
- **peak** of a reference V in t: the cell of t maximising ``V . F_t``.
  ``W^f = softmax(alpha V . F_t / max_t V . F_t)`` (Eq. 4) is a monotonic
  function of the raw products for a fixed V (mmcyc divides by
  ``clamp(|max|, eps)``, a positive number, see
  :func:`~mmcyc.models.utils.cycle_consistency.scaled_softmax`), so its
  argmax is the argmax of ``V . F_t``: neither alpha nor the softmax is
  computed;
- a **hit** when the peak cell touches part k of class c in t (part
  fraction > 0 there); the pair counts for (c, k) only when part k of class
  c is **visible** in t (some cell of t has fraction > 0).

Accuracy = 100 * sum of hits / sum of counts over pairs, classes and parts
(:func:`correspondence_summary`).

Grid rule (psa's, the one of :mod:`mmcyc.models.utils.cam`): a per-pixel
map of an image of size (H, W) is brought to the stride-s feature grid
``(h, w) = (ceil(H / s), ceil(W / s))`` by zero-padding its bottom / right
to ``(h s, w s)`` and averaging each s x s block (``pool_scores``), so a
partial block at the border is divided by s^2 as well. Applied to one-hot
masks this gives the *fraction* of each cell's s x s block on the mask;
applied to a CAM, its mean over the block.

Every function is batched over positions and references (no Python loop
over them) and runs on the device of its inputs; the products are fp32.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmcyc.models.utils.affinity_labels import pool_scores

ArrayLike = Union[torch.Tensor, np.ndarray]

#: Default source-cell threshold on the part fraction of a cell.
MIN_FRACTION = 0.5


def cells_to_grid(maps: torch.Tensor, stride: int = 8) -> torch.Tensor:
    """Per-pixel maps to the stride-s feature grid by psa's rule.

    Zero-pad the bottom / right to a multiple of ``stride``, then average
    each ``stride x stride`` block (``pool_scores`` of
    :mod:`mmcyc.models.utils.affinity_labels`).

    Args:
        maps (Tensor): Maps at the image size, shape (..., H, W); e.g. the
            stage-1 CAM (C, H, W).
        stride (int): s. Defaults to 8 (ResNet-38).

    Returns:
        Tensor: fp32, shape (..., ceil(H / s), ceil(W / s)).
    """
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f'stride must be a positive int, got {stride!r}')
    return pool_scores(maps, stride)  # (..., h, w)


def part_cells(class_id: ArrayLike,
               role: ArrayLike,
               num_classes: int = 20,
               num_parts: int = 2,
               stride: int = 8) -> torch.Tensor:
    """Fraction of each feature cell on part k of class c.

    Args:
        class_id (Tensor | np.ndarray): Class ids, shape (H, W), 0 =
            background, c in 1..num_classes (``decode_part_map``).
        role (Tensor | np.ndarray): Roles, shape (H, W): -1 background, 0
            body, ``1 + k`` part k (``decode_part_map``).
        num_classes (int): C, foreground classes. Defaults to 20.
        num_parts (int): P, parts per class. Defaults to 2.
        stride (int): s of the feature grid. Defaults to 8.

    Returns:
        Tensor: fp32 fractions in [0, 1], shape (C, P, h, w), ``(h, w) =
        (ceil(H / s), ceil(W / s))``; entry ``[c - 1, k]`` is the share of
        each cell's s x s block (padding included, psa's rule) that is part
        k of class c. Bodies and background are in no channel.

    Raises:
        ValueError: For maps of different shapes, or ids / roles outside
            [0, C] / [-1, P].
    """
    class_id = torch.as_tensor(class_id).long()
    role = torch.as_tensor(role, device=class_id.device).long()
    if class_id.dim() != 2 or class_id.shape != role.shape:
        raise ValueError(f'class_id and role must both be (H, W), got '
                         f'{tuple(class_id.shape)} and {tuple(role.shape)}')
    if class_id.numel() and (int(class_id.min()) < 0
                             or int(class_id.max()) > num_classes):
        raise ValueError(f'class ids must lie in [0, {num_classes}], got '
                         f'[{int(class_id.min())}, {int(class_id.max())}]')
    if role.numel() and (int(role.min()) < -1 or int(role.max()) > num_parts):
        raise ValueError(f'roles must lie in [-1, {num_parts}] (1 + k for '
                         f'part k of {num_parts}), got [{int(role.min())}, '
                         f'{int(role.max())}]')
    on_part = (class_id > 0) & (role > 0)  # (H, W)
    # channel (c - 1) * P + k of part k of class c; -1 elsewhere
    code = torch.where(on_part, (class_id - 1) * num_parts + role - 1,
                       torch.full_like(class_id, -1))  # (H, W)
    channels = torch.arange(num_classes * num_parts,
                            device=code.device)  # (C * P, )
    one_hot = (code[None] == channels[:, None, None]).float()  # (C*P, H, W)
    frac = cells_to_grid(one_hot, stride)  # (C * P, h, w)
    return frac.view(num_classes, num_parts, *frac.shape[-2:])  # (C,P,h,w)


def _check_pair_shapes(feat_s, cam_cells_s, part_frac_s, feat_t,
                       part_frac_t) -> None:
    if feat_s.dim() != 3 or feat_t.dim() != 3 or \
            feat_s.shape[0] != feat_t.shape[0]:
        raise ValueError(f'feat_s and feat_t must be (D, h, w) with the same '
                         f'D, got {tuple(feat_s.shape)} and '
                         f'{tuple(feat_t.shape)}')
    if part_frac_s.dim() != 4 or part_frac_t.dim() != 4 or \
            part_frac_s.shape[:2] != part_frac_t.shape[:2]:
        raise ValueError(f'part fractions must be (C, P, h, w) with the same '
                         f'C, P, got {tuple(part_frac_s.shape)} and '
                         f'{tuple(part_frac_t.shape)}')
    if tuple(part_frac_s.shape[2:]) != tuple(feat_s.shape[1:]):
        raise ValueError(f"source part fractions {tuple(part_frac_s.shape)} "
                         f"are not on the source's feature grid "
                         f'{tuple(feat_s.shape[1:])}')
    if tuple(part_frac_t.shape[2:]) != tuple(feat_t.shape[1:]):
        raise ValueError(f"target part fractions {tuple(part_frac_t.shape)} "
                         f"are not on the target's feature grid "
                         f'{tuple(feat_t.shape[1:])}')
    expected = (part_frac_s.shape[0], *feat_s.shape[1:])
    if tuple(cam_cells_s.shape) != expected:
        raise ValueError(f'cam_cells_s must be (C, h, w) = {expected} on the '
                         f"source's grid, got {tuple(cam_cells_s.shape)}")


def reference_mask(cam_cells_s: torch.Tensor,
                   part_frac_s: torch.Tensor,
                   beta1: float = 0.3,
                   min_fraction: float = MIN_FRACTION) -> torch.Tensor:
    """Source cells taken as references of part k of class c.

    Args:
        cam_cells_s (Tensor): The source's stage-1 CAM on its grid, shape
            (C, h, w) (:func:`cells_to_grid` of the (C, H, W) CAM).
        part_frac_s (Tensor): :func:`part_cells` of the source, shape
            (C, P, h, w).
        beta1 (float): CAM threshold. Defaults to 0.3.
        min_fraction (float): Smallest part fraction of a reference cell.
            Defaults to 0.5.

    Returns:
        Tensor: bool, shape (C, P, h, w): fraction >= ``min_fraction`` and
        pooled CAM_c > ``beta1``.
    """
    return (part_frac_s >= min_fraction) & \
        (cam_cells_s[:, None] > beta1)  # (C, P, h, w)


def counted_references(cam_cells_s: torch.Tensor,
                       part_frac_s: torch.Tensor,
                       part_frac_t: torch.Tensor,
                       beta1: float = 0.3,
                       min_fraction: float = MIN_FRACTION) -> torch.Tensor:
    """References of s whose (class, part) is visible in t.

    Args:
        cam_cells_s (Tensor): Source stage-1 CAM on its grid, (C, h_s, w_s).
        part_frac_s (Tensor): :func:`part_cells` of s, (C, P, h_s, w_s).
        part_frac_t (Tensor): :func:`part_cells` of t, (C, P, h_t, w_t).
        beta1 (float): CAM threshold. Defaults to 0.3.
        min_fraction (float): Smallest part fraction of a reference cell.
            Defaults to 0.5.

    Returns:
        Tensor: bool, shape (C, P, h_s * w_s), on ``part_frac_t``'s device.
    """
    device = part_frac_t.device
    refs = reference_mask(cam_cells_s, part_frac_s, beta1,
                          min_fraction).to(device).flatten(2)
    visible = (part_frac_t > 0).flatten(2).any(dim=2)  # (C, P)
    return refs & visible[..., None]  # (C, P, h_s * w_s)


def peak_cells(vectors: torch.Tensor, feat_t: torch.Tensor) -> torch.Tensor:
    """The cell of t where each vector's ``W^f`` peaks.

    ``argmax_j W^f_j = argmax_j V . F_t[j]``: Eq. 4's softmax of the
    max-scaled products is monotonic in them for a fixed V, so the raw fp32
    products suffice (ties go to the first cell in raster order).

    Args:
        vectors (Tensor): S reference vectors, shape (S, D).
        feat_t (Tensor): Target feature map ``F_t``, shape (D, h, w).

    Returns:
        Tensor: int64 flat cell indices ``i * w + j``, shape (S, ).
    """
    flat = feat_t.float().flatten(1)  # (D, h * w)
    sim = vectors.to(flat.device, torch.float32) @ flat  # (S, h * w)
    return sim.argmax(dim=1)  # (S, )


def _pair_references(feat_s: torch.Tensor, cam_cells_s: torch.Tensor,
                     part_frac_s: torch.Tensor, part_frac_t: torch.Tensor,
                     device: torch.device, beta1: float,
                     min_fraction: float) -> tuple:
    """What both counts of a pair start from, on ``device``.

    Returns:
        tuple: ``on_t`` (bool, (C, P, h_t * w_t): the cells of t touching
        part k of class c); ``refs`` (bool, (C, P, S)): the counted
        references (:func:`counted_references`) over the S source cells
        that are a reference of some (c, k), S >= 0; ``vectors``: those
        cells of ``F_s``, fp32 (S, D).
    """
    on_t = (part_frac_t > 0).to(device).flatten(2)  # (C, P, h_t * w_t)
    # only parts visible in t count
    refs = counted_references(cam_cells_s, part_frac_s, part_frac_t.to(device),
                              beta1, min_fraction)  # (C, P, h_s * w_s)
    cells = refs.any(dim=(0, 1)).nonzero().flatten()  # (S, ) source cells
    vectors = feat_s.flatten(1).to(device, torch.float32)[:, cells].t()
    return on_t, refs[..., cells], vectors  # (C, P, S), (S, D)


def correspondence_hits(feat_s: torch.Tensor,
                        cam_cells_s: torch.Tensor,
                        part_frac_s: torch.Tensor,
                        feat_t: torch.Tensor,
                        part_frac_t: torch.Tensor,
                        beta1: float = 0.3,
                        min_fraction: float = MIN_FRACTION
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Hits and counts of one pair (s, t), per class and part.

    A reference (:func:`reference_mask`) of part k of class c in s counts
    when part k of class c is visible in t (any cell of t with fraction >
    0) and hits when its peak in t (:func:`peak_cells`) touches that part
    (fraction > 0 at the peak). The product ``V . F_t`` is computed once
    for the union of the references of all (c, k).

    Args:
        feat_s (Tensor): Source features ``F_s``, shape (D, h_s, w_s).
        cam_cells_s (Tensor): Source stage-1 CAM on its grid, shape
            (C, h_s, w_s), values normalised to [0, 1].
        part_frac_s (Tensor): :func:`part_cells` of s, (C, P, h_s, w_s).
        feat_t (Tensor): Target features ``F_t``, shape (D, h_t, w_t).
        part_frac_t (Tensor): :func:`part_cells` of t, (C, P, h_t, w_t).
        beta1 (float): CAM threshold of the references. Defaults to 0.3.
        min_fraction (float): Smallest part fraction of a reference cell.
            Defaults to 0.5.

    Returns:
        tuple[Tensor, Tensor]: int64 ``hits`` and ``counts``, each of
        shape (C, P), ``hits <= counts``, on the device of ``feat_t``.
    """
    _check_pair_shapes(feat_s, cam_cells_s, part_frac_s, feat_t, part_frac_t)
    on_t, refs, vectors = _pair_references(feat_s, cam_cells_s, part_frac_s,
                                           part_frac_t, feat_t.device, beta1,
                                           min_fraction)
    if len(vectors) == 0:
        counts = refs.sum(dim=2)  # (C, P) zeros
        return torch.zeros_like(counts), counts
    peaks = peak_cells(vectors, feat_t)  # (S, )
    hit = refs & on_t[..., peaks]  # (C, P, S)
    return hit.sum(dim=2), refs.sum(dim=2)  # (C, P) each


def class_cells(class_id: ArrayLike,
                num_classes: int = 20,
                stride: int = 8) -> torch.Tensor:
    """Fraction of each feature cell on an object of class c.

    Args:
        class_id (Tensor | np.ndarray): Class ids, shape (H, W), 0 =
            background, c in 1..num_classes (``decode_part_map``).
        num_classes (int): C, foreground classes. Defaults to 20.
        stride (int): s of the feature grid. Defaults to 8.

    Returns:
        Tensor: fp32 fractions in [0, 1], shape (C, h, w) (psa's grid rule,
        :func:`cells_to_grid`); entry ``[c - 1]`` covers class c's objects,
        parts and body alike.
    """
    class_id = torch.as_tensor(class_id).long()
    if class_id.dim() != 2:
        raise ValueError(f'class_id must be (H, W), got '
                         f'{tuple(class_id.shape)}')
    classes = torch.arange(1, num_classes + 1, device=class_id.device)
    one_hot = (class_id[None] == classes[:, None, None]).float()  # (C, H, W)
    return cells_to_grid(one_hot, stride)  # (C, h, w)


def _check_class_frac(class_frac_t: torch.Tensor, part_frac_t: torch.Tensor,
                      feat_t: torch.Tensor) -> None:
    """``class_frac_t`` must be (C, h_t, w_t), t's grid."""
    expected = (part_frac_t.shape[0], *feat_t.shape[1:])
    if tuple(class_frac_t.shape) != expected:
        raise ValueError(f'class_frac_t must be (C, h, w) = {expected} on the '
                         f"target's grid, got {tuple(class_frac_t.shape)}")


def object_correspondence_hits(feat_s: torch.Tensor,
                               cam_cells_s: torch.Tensor,
                               part_frac_s: torch.Tensor,
                               feat_t: torch.Tensor,
                               part_frac_t: torch.Tensor,
                               class_frac_t: torch.Tensor,
                               beta1: float = 0.3,
                               min_fraction: float = MIN_FRACTION
                               ) -> Tuple[torch.Tensor, torch.Tensor,
                                          torch.Tensor, torch.Tensor]:
    """Hits, counts and chance of one pair with the peaks kept in t's object.

    The references and counts are those of :func:`correspondence_hits`; the
    peak of a reference of class c is taken over the cells of t that touch
    an object of class c (``class_frac_t[c - 1] > 0``) instead of all of t.
    It asks whether F tells an object's parts apart, whatever the
    background does (a reference whose unrestricted peak lies on t's
    background can still hit here). ``chance`` is what a cell drawn
    uniformly from that object would score: per reference of (c, k), the
    share of the object's cells that touch part k. ``other`` counts the
    misses whose peak touches another part of the class (the rest of the
    misses lie on its body only).

    Args:
        feat_s (Tensor): Source features ``F_s``, shape (D, h_s, w_s).
        cam_cells_s (Tensor): Source stage-1 CAM on its grid, shape
            (C, h_s, w_s), values normalised to [0, 1].
        part_frac_s (Tensor): :func:`part_cells` of s, (C, P, h_s, w_s).
        feat_t (Tensor): Target features ``F_t``, shape (D, h_t, w_t).
        part_frac_t (Tensor): :func:`part_cells` of t, (C, P, h_t, w_t).
        class_frac_t (Tensor): :func:`class_cells` of t, (C, h_t, w_t).
        beta1 (float): CAM threshold of the references. Defaults to 0.3.
        min_fraction (float): Smallest part fraction of a reference cell.
            Defaults to 0.5.

    Returns:
        tuple[Tensor, Tensor, Tensor, Tensor]: int64 ``hits`` and
        ``counts``, fp32 ``chance`` (expected hits) and int64 ``other``,
        each of shape (C, P), on the device of ``feat_t``.
    """
    _check_pair_shapes(feat_s, cam_cells_s, part_frac_s, feat_t, part_frac_t)
    _check_class_frac(class_frac_t, part_frac_t, feat_t)
    device = feat_t.device
    num_parts = part_frac_s.shape[1]
    on_t, refs, vectors = _pair_references(feat_s, cam_cells_s, part_frac_s,
                                           part_frac_t, device, beta1,
                                           min_fraction)
    in_object = (class_frac_t > 0).to(device).flatten(1)  # (C, h_t * w_t)
    counts = refs.sum(dim=2)  # (C, P)
    # a visible part lies in its object, so a counted (c, k) has cells
    share = (on_t & in_object[:, None]).sum(dim=2).float() / \
        in_object.sum(dim=1, keepdim=True).clamp(min=1).float()  # (C, P)
    chance = share * counts.float()  # (C, P)
    if len(vectors) == 0:
        return torch.zeros_like(counts), counts, chance, \
            torch.zeros_like(counts)
    sim = vectors @ feat_t.float().flatten(1)  # (S, h_t * w_t)
    # peaks per class c, over c's object cells only: (C, S)
    masked = sim[None].masked_fill(~in_object[:, None], float('-inf'))
    peaks = masked.argmax(dim=2)  # (C, S)
    # at_peak[c, k', s]: the peak of reference s (searched in c's object)
    # touches part k' of class c
    at_peak = on_t.gather(2, peaks[:, None].expand(-1, num_parts, -1))
    hits = (refs & at_peak).sum(dim=2)  # (C, P)
    other = (refs & ~at_peak & at_peak.any(dim=1, keepdim=True)).sum(dim=2)
    return hits, counts, chance, other


def class_separation_hits(feat_s: torch.Tensor,
                          cam_cells_s: torch.Tensor,
                          part_frac_s: torch.Tensor,
                          feat_t: torch.Tensor,
                          part_frac_t: torch.Tensor,
                          class_frac_t: torch.Tensor,
                          beta1: float = 0.3,
                          min_fraction: float = MIN_FRACTION
                          ) -> Tuple[torch.Tensor, torch.Tensor,
                                     torch.Tensor]:
    """Does F still tell the classes apart? Hits, counts and chance.

    The references are those of :func:`correspondence_hits`, each counted
    once per class c (a cell on both parts of c counts once), and only
    where t also holds an object of a class other than c: otherwise the
    question has one answer. The peak of each is taken over the cells of t
    that touch *any* object (the background left out, as
    :func:`object_correspondence_hits` leaves it out); a **hit** when that
    cell touches an object of class c. ``chance`` is what a cell drawn
    uniformly from t's object cells would score: the share of them that
    touch class c's object.

    Args:
        feat_s (Tensor): Source features ``F_s``, shape (D, h_s, w_s).
        cam_cells_s (Tensor): Source stage-1 CAM on its grid, shape
            (C, h_s, w_s), values normalised to [0, 1].
        part_frac_s (Tensor): :func:`part_cells` of s, (C, P, h_s, w_s).
        feat_t (Tensor): Target features ``F_t``, shape (D, h_t, w_t).
        part_frac_t (Tensor): :func:`part_cells` of t, (C, P, h_t, w_t).
        class_frac_t (Tensor): :func:`class_cells` of t, (C, h_t, w_t).
        beta1 (float): CAM threshold of the references. Defaults to 0.3.
        min_fraction (float): Smallest part fraction of a reference cell.
            Defaults to 0.5.

    Returns:
        tuple[Tensor, Tensor, Tensor]: int64 ``hits`` and ``counts`` and
        fp32 ``chance`` (expected hits), each of shape (C, ), on the device
        of ``feat_t``.
    """
    _check_pair_shapes(feat_s, cam_cells_s, part_frac_s, feat_t, part_frac_t)
    _check_class_frac(class_frac_t, part_frac_t, feat_t)
    device = feat_t.device
    _, refs, vectors = _pair_references(feat_s, cam_cells_s, part_frac_s,
                                        part_frac_t, device, beta1,
                                        min_fraction)
    in_object = (class_frac_t > 0).to(device).flatten(1)  # (C, h_t * w_t)
    present = in_object.any(dim=1)  # (C, )
    # t holds an object of a class other than c
    other_class = (present.sum() - present.long()) > 0  # (C, )
    refs = refs.any(dim=1) & other_class[:, None]  # (C, S)
    counts = refs.sum(dim=1)  # (C, )
    any_object = in_object.any(dim=0)  # (h_t * w_t, )
    chance = counts.float() * in_object.sum(dim=1).float() / \
        any_object.sum().clamp(min=1).float()  # (C, )
    if not bool(refs.any()):
        return torch.zeros_like(counts), counts, chance
    sim = vectors @ feat_t.float().flatten(1)  # (S, h_t * w_t)
    peaks = sim.masked_fill(~any_object, float('-inf')).argmax(dim=1)  # (S,)
    hits = (refs & in_object[:, peaks]).sum(dim=1)  # (C, )
    return hits, counts, chance


def correspondence_summary(
        hits: torch.Tensor,
        counts: torch.Tensor,
        class_names: Optional[Sequence[str]] = None) -> Dict:
    """Accuracy over pairs, classes and parts, in percent.

    Args:
        hits (Tensor): Summed hits, shape (C, P).
        counts (Tensor): Summed counts, shape (C, P).
        class_names (Sequence[str], optional): C foreground class names,
            the keys of ``per_class``. Defaults to None: ``'1'`` .. ``'C'``
            (the class ids).

    Returns:
        dict: ``acc`` (float, ``100 * sum hits / sum counts``; nan without
        references), ``hits`` and ``count`` (int), ``per_class`` (name ->
        dict of ``acc``, ``hits``, ``count`` and ``per_part``: a list of P
        such dicts without ``per_part``), only classes with count > 0.
        (The part maps do not tell which part of an object is the salient
        one, so there is no salient / weak split.)
    """
    hits = torch.as_tensor(hits).long().cpu()
    counts = torch.as_tensor(counts).long().cpu()
    if hits.shape != counts.shape or hits.dim() != 2:
        raise ValueError(f'hits and counts must both be (C, P), got '
                         f'{tuple(hits.shape)} and {tuple(counts.shape)}')
    if bool((hits > counts).any()) or bool((hits < 0).any()):
        raise ValueError('expected 0 <= hits <= counts everywhere')
    if class_names is None:
        class_names = [str(c + 1) for c in range(hits.shape[0])]
    if len(class_names) != hits.shape[0]:
        raise ValueError(f'{len(class_names)} class names for '
                         f'{hits.shape[0]} classes')

    def entry(h: torch.Tensor, n: torch.Tensor) -> dict:
        h, n = int(h.sum()), int(n.sum())
        return dict(acc=100.0 * h / n if n else float('nan'), hits=h,
                    count=n)

    per_class = {}
    for c, name in enumerate(class_names):
        if int(counts[c].sum()):
            per_class[name] = dict(
                entry(hits[c], counts[c]),
                per_part=[entry(h, n) for h, n in zip(hits[c], counts[c])])
    return dict(entry(hits, counts), per_class=per_class)
