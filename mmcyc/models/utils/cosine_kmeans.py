# Copyright (c) mmcyc contributors. All rights reserved.
"""Seeded, capped k-means with cosine distance, batched over point sets.

LPCAM (Chen & Sun, CVPR 2023, https://arxiv.org/abs/2303.10334) clusters
the classifier's feature vectors of each class with ``kmeans_pytorch``'s
cosine k-means: points are assigned to the centre of largest cosine
similarity, and each centre is the mean of its raw (un-normalised) points,
so a centre keeps the features' magnitude (LPCAM then scores the centres
with the classifier, ``softmax(centres @ W^T)``). This module computes the
same, with what that implementation lacks:

- a ``torch.Generator`` (one for all sets, or one per set) seeds the
  initialisation (k-means++ by default, or the public code's uniformly
  random distinct points), so a fit is reproducible;
- at most ``max_iters`` Lloyd iterations; a set still moving then is
  reported with a warning (MMLogger) naming it and its last shift;
- an empty cluster is re-seeded deterministically with the point farthest
  (in cosine distance) from the centre it is assigned to (the e empty
  clusters of a set, in index order, take its e farthest points), instead
  of becoming NaN (``kmeans_pytorch``'s mean of nothing, which may never
  converge: LPCAM issue #5);
- B point sets are clustered at once: padded to (B, N, D) with a mask, one
  batched matrix product per iteration, no Python loop over points. A set
  with n < K points gets n centres (the other centres are marked invalid).

Convergence: the shift of an iteration is the largest relative centre
movement ``max_k ||c_k' - c_k|| / ||c_k||`` of a set; the set has converged
when it is at most ``tol`` (``tol = 0``: the centres stopped moving, i.e.
the assignments are stable). A converged set is frozen (left out of the
products) while the others go on.
"""
from typing import NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger

KMEANS_INITS = ('k-means++', 'random')

Generators = Union[torch.Generator, Sequence[torch.Generator], None]


class KMeansResult(NamedTuple):
    """What :func:`cosine_kmeans` returns (B sets, K clusters, N points).

    Attributes:
        centres (Tensor): Cluster centres (means of their raw points), shape
            (B, K, D), fp32; zero where ``centre_mask`` is False.
        centre_mask (Tensor): Valid centres, shape (B, K), bool: the first
            ``min(K, n_b)`` of set b.
        assignments (Tensor): Cluster index of every point at the last
            assignment step, shape (B, N), int64; -1 for padding.
        iterations (Tensor): Lloyd iterations run per set, shape (B, ).
        shift (Tensor): Last relative centre shift per set, shape (B, ).
        converged (Tensor): ``shift <= tol`` per set, shape (B, ), bool.
    """
    centres: torch.Tensor
    centre_mask: torch.Tensor
    assignments: torch.Tensor
    iterations: torch.Tensor
    shift: torch.Tensor
    converged: torch.Tensor


def _uniforms(generator: Generators, num_sets: int, count: int,
              device: torch.device) -> torch.Tensor:
    """(num_sets, count) uniforms in [0, 1): row b from generator b (or all
    rows, in order, from one generator), moved to ``device``."""
    if generator is None or isinstance(generator, torch.Generator):
        draws = torch.rand(num_sets, count, generator=generator)
    else:
        if len(generator) != num_sets:
            raise ValueError(f'expected one generator per set ({num_sets}), '
                             f'got {len(generator)}')
        draws = torch.stack(
            [torch.rand(count, generator=g) for g in generator])
    return draws.to(device)


def _sample(weights: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Index drawn with probability proportional to ``weights`` (B, N), by
    inverse CDF with ``uniform`` (B, ); rows of zero weight give 0."""
    cdf = weights.cumsum(dim=1)  # (B, N)
    target = (uniform * cdf[:, -1])[:, None]  # (B, 1)
    index = torch.searchsorted(cdf, target, right=True)[:, 0]  # (B, )
    return index.clamp(max=weights.shape[1] - 1)


def _init_centres(unit: torch.Tensor, valid: torch.Tensor, num_clusters: int,
                  init: str, generator: Generators) -> torch.Tensor:
    """Indices of the K initial centres of every set, shape (B, K).

    ``'k-means++'``: the first uniformly among the valid points, each next
    one with probability proportional to the squared cosine distance to the
    nearest chosen centre (uniformly among the unchosen points when every
    distance is 0). ``'random'``: K distinct points uniformly. Entries
    beyond a set's n valid points are arbitrary (masked by the caller).
    """
    num_sets, num_points = valid.shape
    draws = _uniforms(generator, num_sets, num_clusters, unit.device)
    chosen = torch.zeros_like(valid)  # (B, N)
    nearest = torch.full(valid.shape, float('inf'), device=unit.device)
    rows = torch.arange(num_sets, device=unit.device)
    indices = []
    for k in range(num_clusters):
        free = (valid & ~chosen).float()  # (B, N)
        if init == 'k-means++' and k > 0:
            weights = nearest.clamp(min=0).square() * free
            weights = torch.where(
                weights.sum(dim=1, keepdim=True) > 0, weights, free)
        else:
            weights = free
        index = _sample(weights, draws[:, k])  # (B, )
        indices.append(index)
        chosen[rows, index] = True
        if init == 'k-means++':
            sim = torch.einsum('bnd,bd->bn', unit, unit[rows, index])
            nearest = torch.minimum(nearest, 1 - sim)  # (B, N)
    return torch.stack(indices, dim=1)  # (B, K)


def _reseed_empty(assign: torch.Tensor, best_sim: torch.Tensor,
                  valid: torch.Tensor, centre_mask: torch.Tensor,
                  num_clusters: int) -> torch.Tensor:
    """Give every empty valid cluster the farthest point of its set.

    The e empty clusters of a set (in index order) take the set's e points
    of lowest cosine similarity to their own centre (ties: lower index).

    Args:
        assign (Tensor): Assignments, shape (B, N).
        best_sim (Tensor): Similarity of each point to its centre, (B, N).
        valid (Tensor): Point mask, (B, N).
        centre_mask (Tensor): Centre mask, (B, K).
        num_clusters (int): K.

    Returns:
        Tensor: The assignments with those points moved, shape (B, N).
    """
    onehot = F.one_hot(assign.clamp(min=0), num_clusters) * valid[..., None]
    empty = (onehot.sum(dim=1) == 0) & centre_mask  # (B, K)
    if not empty.any():
        return assign
    distance = torch.where(valid, 1 - best_sim,
                           torch.full_like(best_sim, -float('inf')))
    order = distance.argsort(dim=1, descending=True, stable=True)  # (B, N)
    rank = (empty.long().cumsum(dim=1) - 1).clamp(min=0)  # (B, K)
    farthest = order.gather(1, rank)  # (B, K): the rank-th farthest point
    set_index, cluster = torch.nonzero(empty, as_tuple=True)
    assign = assign.clone()
    assign[set_index, farthest[set_index, cluster]] = cluster
    return assign


def cosine_kmeans(points: torch.Tensor,
                  num_clusters: int,
                  mask: Optional[torch.Tensor] = None,
                  max_iters: int = 100,
                  tol: float = 1e-4,
                  init: str = 'k-means++',
                  generator: Generators = None,
                  names: Optional[Sequence[str]] = None) -> KMeansResult:
    """K-means with cosine distance on B padded point sets at once.

    Call order per iteration: assign (argmax cosine similarity to the
    valid centres) -> re-seed empty clusters -> centres = mean of raw
    points -> shift; sets whose shift is at most ``tol`` are frozen.

    Args:
        points (Tensor): Point sets, shape (B, N, D) (or (N, D): one set).
            Computed in fp32 on their device.
        num_clusters (int): K >= 1.
        mask (Tensor, optional): Valid points, shape (B, N) (or (N, )),
            bool. Defaults to all valid.
        max_iters (int): Cap on Lloyd iterations. Defaults to 100.
        tol (float): Convergence threshold on the relative centre shift
            (module docstring). Defaults to 1e-4.
        init (str): ``'k-means++'`` (default) or ``'random'`` (K distinct
            points uniformly, as ``kmeans_pytorch``).
        generator (torch.Generator | Sequence[torch.Generator], optional):
            Seeds the initialisation: one generator drawn for all sets in
            order, or one per set (a set's result then does not depend on
            the other sets of the batch). Any device; draws are moved to
            the points' device. None: torch's global generator.
        names (Sequence[str], optional): A name per set for the warning
            about sets that did not converge. Defaults to ``'set <b>'``.

    Returns:
        KMeansResult: Centres (B, K, D), centre mask (B, K), assignments
        (B, N), iterations, last shift and convergence per set (B, ). For
        (N, D) input the batch dimension is kept (B = 1).
    """
    if num_clusters < 1:
        raise ValueError(f'num_clusters must be >= 1, got {num_clusters}')
    if max_iters < 1:
        raise ValueError(f'max_iters must be >= 1, got {max_iters}')
    if tol < 0:
        raise ValueError(f'tol must be >= 0, got {tol}')
    if init not in KMEANS_INITS:
        raise ValueError(f'init must be one of {KMEANS_INITS}, got {init!r}')
    if points.dim() == 2:
        points = points[None]
        mask = None if mask is None else mask[None]
    if points.dim() != 3:
        raise ValueError('points must be (B, N, D) or (N, D), got shape '
                         f'{tuple(points.shape)}')
    num_sets, num_points, _ = points.shape
    device = points.device
    points = points.float()
    valid = torch.ones(num_sets, num_points, dtype=torch.bool,
                       device=device) if mask is None else mask.to(
                           device=device, dtype=torch.bool)
    if valid.shape != (num_sets, num_points):
        raise ValueError(f'mask must be {(num_sets, num_points)}, got '
                         f'{tuple(valid.shape)}')
    names = names or [f'set {b}' for b in range(num_sets)]
    if len(names) != num_sets:
        raise ValueError(f'expected {num_sets} names, got {len(names)}')

    unit = F.normalize(points, dim=2)  # (B, N, D)
    counts = valid.sum(dim=1)  # (B, )
    centre_mask = torch.arange(num_clusters, device=device)[None] < \
        counts[:, None]  # (B, K)
    rows = torch.arange(num_sets, device=device)[:, None]  # (B, 1)
    if num_points:
        seeds = _init_centres(unit, valid, num_clusters, init, generator)
        centres = points[rows, seeds] * centre_mask[..., None]  # (B, K, D)
    else:
        centres = points.new_zeros(num_sets, num_clusters, points.shape[2])
    assign = torch.full((num_sets, num_points), -1, dtype=torch.long,
                        device=device)
    iterations = torch.zeros(num_sets, dtype=torch.long, device=device)
    shift = torch.zeros(num_sets, device=device)
    active = counts > 0  # (B, )
    for _ in range(max_iters):
        if not active.any():
            break
        # only the sets still moving: (A, N, D) of them
        idx = torch.nonzero(active).flatten()
        sub_valid, sub_mask = valid[idx], centre_mask[idx]
        sub_centres = centres[idx]
        sim = torch.einsum('bnd,bkd->bnk', unit[idx],
                           F.normalize(sub_centres, dim=2))  # (A, N, K)
        sim = sim.masked_fill(~sub_mask[:, None], -float('inf'))
        best_sim, new_assign = sim.max(dim=2)  # (A, N)
        new_assign = _reseed_empty(new_assign, best_sim, sub_valid, sub_mask,
                                   num_clusters)
        new_assign = new_assign.masked_fill(~sub_valid, -1)
        onehot = F.one_hot(new_assign.clamp(min=0), num_clusters).float() \
            * sub_valid[..., None]  # (A, N, K)
        sums = torch.einsum('bnk,bnd->bkd', onehot, points[idx])  # (A, K, D)
        sizes = onehot.sum(dim=1)  # (A, K)
        new_centres = sums / sizes.clamp(min=1)[..., None]
        moved = (new_centres - sub_centres).norm(dim=2) / sub_centres.norm(
            dim=2).clamp(min=1e-12)  # (A, K)
        new_shift = moved.masked_fill(~sub_mask, 0).amax(dim=1)  # (A, )
        centres[idx] = new_centres
        assign[idx] = new_assign
        shift[idx] = new_shift
        iterations[idx] += 1
        active[idx] = new_shift > tol
    converged = ~active
    if active.any():
        logger = MMLogger.get_current_instance()
        for b in torch.nonzero(active).flatten().tolist():
            logger.warning(
                f'k-means of {names[b]} did not converge within {max_iters} '
                f'iterations: last relative centre shift '
                f'{shift[b].item():.3g} > tol {tol}')
    return KMeansResult(centres, centre_mask, assign, iterations, shift,
                        converged)
