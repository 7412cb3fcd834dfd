# Copyright (c) mmcyc contributors. All rights reserved.
"""Cycle consistency in semantics as pure tensor functions (Eq. 3-11).

All selected vectors of all pairs of a batch go through the cycle together:
the per-pair selections are padded to a common length S with a validity mask
and every similarity is one batched matrix product. The chain used by
``CycleConsistencyHead`` is::

    select_positions (beta1)                      -> index, valid  (N, S)
    gather_vectors(F_A, index)                    -> V_(x,y)       (N, S, D)
    [target_cells(CAM_B) (beta1)                  -> allowed       (N, P_B)]
    propagate(V_(x,y), F_B[, allowed]) (Eq. 3-5)  -> V_i           (N, S, D)
    retrieve(V_i, F_A)          (Eq. 6-7)         -> log W^b       (N, S, P_A)
    cycle_consistency_loss(log W^b, index, valid, (h, w), beta2)
        (DCFS keep mask, Eq. 8 with the distance mask of Eq. 10-11)

``P = h * w`` is the number of feature-map positions.

Note:
    Memory. The (N, S, P) similarity tensors dominate: each holds
    ``4 * N * S * P`` bytes (fp32). Autograd keeps four of them for the
    backward pass (W^f, its softmax, W^b and log W^b) and the forward makes
    one or two short-lived ones (the max-scaled logits). At 448x448 crops
    (56x56 = 3136 positions) with every position selected that is ~39 MB per
    (pair, tensor), i.e. ~1.3-1.9 GB for 8 pairs, whatever D is. ``D`` enters
    only through the (N, S, D) vectors and the products' FLOPs
    (``6 * N * S * P * D`` forward). ``max_selected`` bounds S.
"""
import functools
import math
from typing import List, Optional, Tuple

import torch


def select_positions(
        cam_a: torch.Tensor,
        shared: torch.Tensor,
        beta1: float,
        max_selected: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        fixed_size: bool = False
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions of A whose CAM exceeds ``beta1`` for a class B also has.

    A position (x, y) is a candidate when ``max_{c shared} cam_a[c](x, y) >
    beta1`` (paper Sect. 3.2.3). The candidates of each pair are packed at
    the front of a padded index tensor, in raster order, with a validity mask.

    When ``max_selected`` is set and a pair has more candidates, a uniformly
    random subset of ``max_selected`` of them is kept (drawn from
    ``generator``, or from torch's global generator, which mmengine seeds via
    ``randomness=dict(seed=...)``, so runs are reproducible). A random subset
    rather than the top-CAM positions keeps the loss an unbiased estimate of
    the mean over all candidates; top-CAM would keep only the peaks that the
    CAM already finds.

    The padded length S is the largest per-pair count, which needs one
    device-to-host sync (``int()`` of a device tensor: the host waits for
    the backbone's forward before it can queue the rest of the step). With
    ``fixed_size=True`` S is fixed instead, ``min(max_selected, h * w)``
    (``h * w`` without a cap), and nothing waits: the entries past each
    pair's count are padding (``valid`` False). The first entries are then
    exactly those of the default path, whose S-long result is a prefix of
    this one; the only difference is that the random priorities of the cap
    are drawn on every call (the default path draws them only when a pair
    exceeds the cap, which it must sync to know), so the random stream
    after the call differs. The longer S costs compute and memory in the
    (N, S, h * w) products: ``h * w / S`` times the default path's when
    there is no cap.

    Args:
        cam_a (Tensor): Normalised CAM of A (Eq. 2), shape (N, C, h, w).
        shared (Tensor): Multi-hot classes shared by A and B, shape (N, C).
        beta1 (float): CAM threshold (0.3 in the paper).
        max_selected (int, optional): Cap on the positions per pair.
            Defaults to None (no cap).
        generator (torch.Generator, optional): Generator of the random subset
            (on ``cam_a``'s device). Defaults to the global one.
        fixed_size (bool): Pad to a fixed S (see above) instead of the
            largest count: no host sync. Defaults to False.

    Returns:
        tuple[Tensor, Tensor, Tensor]:

        - index: flat positions ``y * w + x`` in A, shape (N, S), int64;
          padding entries are 0.
        - valid: which entries of ``index`` are real, shape (N, S), bool.
        - num_candidates: positions above ``beta1`` per pair before the cap,
          shape (N, ), int64.
    """
    n = cam_a.shape[0]
    candidate = shared_class_score(cam_a, shared) > beta1  # (N, P)
    num_candidates = candidate.sum(dim=1)  # (N, )
    if fixed_size:
        index, valid = _select_fixed(candidate, num_candidates, max_selected,
                                     generator)
        return index, valid, num_candidates
    size = int(num_candidates.max()) if n > 0 else 0  # host sync
    if max_selected is not None and size > max_selected:
        size = max_selected
        priority = torch.rand(
            candidate.shape, generator=generator, device=candidate.device)
        key = torch.where(candidate, priority, priority.new_tensor(-1.0))
    else:
        key = candidate.to(torch.int8)  # (N, P); stable sort keeps raster
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    index = order[:, :size]  # (N, S)
    valid = candidate.gather(1, index)  # (N, S)
    return index.masked_fill(~valid, 0), valid, num_candidates


def shared_class_score(cam: torch.Tensor,
                       shared: torch.Tensor) -> torch.Tensor:
    """Per position, the largest CAM over the classes a pair shares.

    Args:
        cam (Tensor): Normalised CAM, shape (N, C, h, w).
        shared (Tensor): Multi-hot classes shared by A and B, shape (N, C).

    Returns:
        Tensor: ``max_{c shared} cam[c]``, shape (N, h * w), fp32 and
        detached; ``-inf`` for a pair with no shared class.
    """
    is_shared = shared.to(torch.bool)[..., None, None]  # (N, C, 1, 1)
    score = cam.detach().float().masked_fill(~is_shared, -math.inf)
    return score.flatten(2).amax(dim=1)  # (N, P)


def target_cells(cam_b: torch.Tensor, shared: torch.Tensor,
                 beta1: float) -> torch.Tensor:
    """B's cells the propagation step may land on, by B's CAM.

    A cell of B is allowed when the CAM of a class shared with A exceeds
    ``beta1`` there: the rule by which A's start positions are chosen
    (:func:`select_positions`), applied to B. A pair with no such cell
    keeps every cell (the paper's propagation), so that no start vector is
    left without a target.

    Args:
        cam_b (Tensor): Normalised CAM of B (Eq. 2), shape (N, C, h_b, w_b).
        shared (Tensor): Multi-hot classes shared by A and B, shape (N, C).
        beta1 (float): CAM threshold (0.3 in the paper).

    Returns:
        Tensor: Allowed cells, shape (N, h_b * w_b), bool.
    """
    allowed = shared_class_score(cam_b, shared) > beta1  # (N, P_B)
    return allowed | ~allowed.any(dim=1, keepdim=True)


def _select_fixed(
        candidate: torch.Tensor, num_candidates: torch.Tensor,
        max_selected: Optional[int], generator: Optional[torch.Generator]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`select_positions` with ``fixed_size=True``: no host sync.

    Same ordering keys as the default path, chosen on the device: random
    priorities for the candidates as soon as one pair exceeds the cap (the
    default path's rule), else 1 for every candidate (raster order, as the
    default path's int8 key); -1 for the other positions.

    Args:
        candidate (Tensor): Positions above beta1, shape (N, P), bool.
        num_candidates (Tensor): Their count per pair, shape (N, ).
        max_selected (int, optional): Cap on the positions per pair.
        generator (torch.Generator, optional): Generator of the priorities.

    Returns:
        tuple[Tensor, Tensor]: index (N, S) and valid (N, S), S =
        ``min(max_selected, P)`` (P without a cap).
    """
    positions = candidate.shape[1]
    if max_selected is not None and max_selected < positions:
        size = max_selected
        priority = torch.rand(
            candidate.shape, generator=generator, device=candidate.device)
        over = (num_candidates > max_selected).any()  # 0-dim, stays on device
        inner = torch.where(over, priority, priority.new_ones(()))  # (N, P)
        # new_full, not new_tensor: no host-to-device copy (which syncs)
        key = torch.where(candidate, inner, priority.new_full((), -1.0))
    else:
        size = positions
        key = candidate.to(torch.int8)  # (N, P); stable sort keeps raster
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    index = order[:, :size]  # (N, S)
    valid = candidate.gather(1, index)  # (N, S)
    return index.masked_fill(~valid, 0), valid


def gather_vectors(feat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Feature vectors at flat positions.

    Args:
        feat (Tensor): Feature map, shape (N, D, h, w).
        index (Tensor): Flat positions ``y * w + x``, shape (N, S).

    Returns:
        Tensor: ``V_(x,y)``, shape (N, S, D).
    """
    flat = feat.flatten(2)  # (N, D, P)
    idx = index[:, None, :].expand(-1, flat.shape[1], -1)  # (N, D, S)
    return flat.gather(2, idx).transpose(1, 2)  # (N, S, D)


def _scaled_logits(sim: torch.Tensor,
                   alpha: float,
                   eps: float,
                   allowed: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``alpha * sim / max`` over the last dim, ``max`` guarded (see below).

    With ``allowed`` (broadcastable to ``sim``, bool) the maximum is taken
    over the allowed entries only and the others get ``-inf`` logits, so a
    softmax gives them exactly 0. The mask is applied after the scaling:
    a ``-inf`` inside the product would make its backward ``0 * inf``.
    """
    seen = sim if allowed is None else sim.masked_fill(~allowed, -math.inf)
    peak = seen.amax(dim=-1, keepdim=True)  # (..., 1)
    # one full-size product (and a cheap backward) instead of mul + div
    logits = sim * (alpha / peak.abs().clamp(min=eps))  # (..., P)
    return logits if allowed is None else logits.masked_fill(
        ~allowed, -math.inf)


def scaled_softmax(sim: torch.Tensor,
                   alpha: float,
                   eps: float = 1e-6,
                   allowed: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. 4 / 7: ``softmax(alpha * W / max W)`` over the last dim.

    The paper divides by the maximum because the raw products overflow a
    softmax. Features need not be non-negative, so the maximum may be <= 0;
    dividing by ``clamp(|max|, min=eps)`` instead keeps the order of the
    scores (a negative divisor would reverse it) and never divides by zero.
    For a positive maximum above ``eps`` it is exactly the paper's formula.
    The maximum is not detached: the gradient flows through it as through
    the formula.

    Args:
        sim (Tensor): Similarity scores, shape (..., P).
        alpha (float): Scale (20 in the paper).
        eps (float): Smallest divisor. Defaults to 1e-6.
        allowed (Tensor, optional): Entries the softmax runs over,
            broadcastable to ``sim``, bool; each row needs at least one.
            The maximum is then taken over them and the others get
            probability 0. Defaults to None: every entry.

    Returns:
        Tensor: Probabilities over the last dim, shape (..., P).
    """
    return torch.softmax(_scaled_logits(sim, alpha, eps, allowed), dim=-1)


def log_scaled_softmax(sim: torch.Tensor,
                       alpha: float,
                       eps: float = 1e-6) -> torch.Tensor:
    """Logarithm of :func:`scaled_softmax` via ``log_softmax`` (no log(0)).

    Args:
        sim (Tensor): Similarity scores, shape (..., P).
        alpha (float): Scale (20 in the paper).
        eps (float): Smallest divisor. Defaults to 1e-6.

    Returns:
        Tensor: Log-probabilities over the last dim, shape (..., P).
    """
    return torch.log_softmax(_scaled_logits(sim, alpha, eps), dim=-1)


def propagate(vectors: torch.Tensor,
              feat_b: torch.Tensor,
              alpha: float,
              eps: float = 1e-6,
              allowed: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Propagation step (Eq. 3-5): the soft nearest neighbour of V in F_B.

    ``W^f = V_(x,y) . F_B`` (Eq. 3), ``W^f <- softmax(alpha W^f / max W^f)``
    (Eq. 4), ``V_i = F_B . W^f`` (Eq. 5), for all S vectors of all N pairs in
    two batched products.

    Args:
        vectors (Tensor): ``V_(x,y)`` from A, shape (N, S, D).
        feat_b (Tensor): ``F_B``, shape (N, D, h_b, w_b).
        alpha (float): Softmax scale (20 in the paper).
        eps (float): Smallest divisor of the max-scaling.
        allowed (Tensor, optional): B's cells W^f may weight, shape (N,
            h_b * w_b), bool, at least one per pair (see
            :func:`target_cells`): Eq. 4's maximum and softmax run over
            them only. Defaults to None: every cell (the paper).

    Returns:
        Tensor: ``V_i``, shape (N, S, D).
    """
    flat_b = feat_b.flatten(2)  # (N, D, P_B)
    if allowed is not None:
        allowed = allowed[:, None, :]  # (N, 1, P_B)
    weight = scaled_softmax(
        torch.bmm(vectors, flat_b), alpha, eps, allowed)  # (N, S, P_B)
    return torch.bmm(weight, flat_b.transpose(1, 2))  # (N, S, D)


def retrieve(neighbours: torch.Tensor,
             feat_a: torch.Tensor,
             alpha: float,
             eps: float = 1e-6) -> torch.Tensor:
    """Retrieval step (Eq. 6-7), returned as ``log W^b``.

    ``W^b = V_i . F_A`` (Eq. 6), ``W^b <- softmax(alpha W^b / max W^b)``
    (Eq. 7). The log is taken with ``log_softmax`` so that Eq. 8 never sees
    ``log(0)``; ``W^b`` itself is ``exp`` of the result.

    Args:
        neighbours (Tensor): ``V_i``, shape (N, S, D).
        feat_a (Tensor): ``F_A``, shape (N, D, h, w).
        alpha (float): Softmax scale (20 in the paper).
        eps (float): Smallest divisor of the max-scaling.

    Returns:
        Tensor: ``log W^b`` over A's positions, shape (N, S, h * w).
    """
    sim = torch.bmm(neighbours, feat_a.flatten(2))  # (N, S, P_A)
    return log_scaled_softmax(sim, alpha, eps)


def distance_mask_offsets(radius: int) -> Tuple[List[Tuple[int, int]],
                                                List[float]]:
    """Offsets and weights of the label map ``y^mask`` (Eq. 10-11).

    ``D = dy^2 + dx^2`` (squared distance) and ``y^mask = r - D`` where
    ``D < r``, else 0. For r = 5 these are 13 offsets with weights
    5, 4 (x4), 3 (x4) and 1 (x4).

    Args:
        radius (int): ``r`` (5 in the paper), >= 1.

    Returns:
        tuple[list[tuple[int, int]], list[float]]: The (dy, dx) offsets with
        a non-zero weight, nearest first, and their weights ``r - D``.
    """
    if radius < 1:
        raise ValueError(f'radius must be >= 1, got {radius}')
    reach = math.isqrt(radius - 1)  # largest |d| with d^2 < r
    offsets = [(dy, dx) for dy in range(-reach, reach + 1)
               for dx in range(-reach, reach + 1)
               if dy * dy + dx * dx < radius]
    offsets.sort(key=lambda o: (o[0]**2 + o[1]**2, o))
    weights = [float(radius - dy * dy - dx * dx) for dy, dx in offsets]
    return offsets, weights


@functools.lru_cache(maxsize=None)
def _offset_tensors(radius: int,
                    device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`distance_mask_offsets` as tensors on ``device``, made once.

    Cached because ``torch.tensor(list, device='cuda')`` copies from
    pageable host memory, which waits for the device: once per step
    otherwise. Read-only: never modify the returned tensors.
    """
    offsets, weights = distance_mask_offsets(radius)
    return (torch.tensor(offsets, device=device),
            torch.tensor(weights, device=device))


def distance_mask(index: torch.Tensor, size: Tuple[int, int],
                  radius: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sparse ``y^mask_(x,y)`` (Eq. 10-11) around each selected position.

    Only the K positions with a non-zero weight are produced (K = 13 for
    r = 5), never a dense (h*w) x (h*w) mask. Offsets falling outside the
    image get weight 0 (and a clamped, harmless index).

    Args:
        index (Tensor): Flat positions ``y * w + x`` in A, shape (N, S).
        size (tuple[int, int]): A's grid ``(h, w)``.
        radius (int): ``r`` of Eq. 11.

    Returns:
        tuple[Tensor, Tensor]:

        - neighbour index: flat positions, shape (N, S, K), int64.
        - weight: ``y^mask`` at those positions, shape (N, S, K), fp32.
    """
    height, width = size
    offset, weight = _offset_tensors(radius, index.device)  # (K, 2), (K, )
    row = (index // width)[..., None] + offset[:, 0]  # (N, S, K)
    col = (index % width)[..., None] + offset[:, 1]  # (N, S, K)
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    neighbour = (row.clamp(0, height - 1) * width +
                 col.clamp(0, width - 1))  # (N, S, K)
    return neighbour, weight * inside  # (N, S, K), (N, S, K)


def return_probability(log_wb: torch.Tensor,
                       index: torch.Tensor) -> torch.Tensor:
    """``W^b_(x,y)(x, y)``: the mass that comes back to the start position.

    Args:
        log_wb (Tensor): ``log W^b``, shape (N, S, P).
        index (Tensor): Start positions, shape (N, S).

    Returns:
        Tensor: Probabilities, shape (N, S).
    """
    return log_wb.gather(2, index[..., None]).squeeze(2).exp()  # (N, S)


def cycle_consistency_loss(
        log_wb: torch.Tensor, index: torch.Tensor, valid: torch.Tensor,
        size: Tuple[int, int], radius: int,
        beta2: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DCFS selection and the cycle-consistency loss (Eq. 8, 10-11).

    ``V^sel`` holds the valid positions whose return probability
    ``W^b_(x,y)(x, y)`` exceeds ``beta2``, and

    ``L_cyc = -1/|V^sel| sum_{(x,y) in V^sel} sum_{(i,j)}
    y^mask_(x,y)(i, j) log W^b_(x,y)(i, j)``.

    With an empty ``V^sel`` the loss is an exact 0 still connected to
    ``log_wb``'s graph (never NaN).

    Args:
        log_wb (Tensor): ``log W^b``, shape (N, S, h * w).
        index (Tensor): Start positions, shape (N, S).
        valid (Tensor): Real (not padding) entries, shape (N, S), bool.
        size (tuple[int, int]): A's grid ``(h, w)``.
        radius (int): ``r`` of Eq. 11.
        beta2 (float): DCFS threshold.

    Returns:
        tuple[Tensor, Tensor, Tensor]:

        - loss: scalar.
        - keep: ``V^sel`` as a mask, shape (N, S), bool.
        - wb_self: ``W^b_(x,y)(x, y)``, shape (N, S), detached.
    """
    wb_self = return_probability(log_wb.detach(), index)  # (N, S)
    keep = valid & (wb_self > beta2)  # (N, S)
    neighbour, weight = distance_mask(index, size, radius)  # (N, S, K)
    log_near = log_wb.gather(2, neighbour)  # (N, S, K)
    per_vector = (weight * log_near).sum(dim=2)  # (N, S)
    total = torch.where(keep, per_vector, per_vector.new_zeros(()))
    loss = -total.sum() / keep.sum().clamp(min=1)
    return loss, keep, wb_self
