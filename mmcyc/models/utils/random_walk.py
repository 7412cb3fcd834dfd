# Copyright (c) mmcyc contributors. All rights reserved.
"""AffinityNet's pair set, pair affinities and random walk as tensor functions.

Ahn and Kwak, "Learning Pixel-level Semantic Affinity with Image-level
Supervision for Weakly Supervised Semantic Segmentation" (CVPR 2018,
https://arxiv.org/abs/1803.10464, public code ``jiwoon-ahn/psa``). The chain
used by :class:`~mmcyc.models.postprocessors.AffinityRWPostprocessor` is::

    radius_offsets -> pair_affinity -> transition_matrix -> random_walk

**The pair set** (psa ``tool/pyutils.py`` ``get_indices_of_pairs``, also
``infer_aff.py`` ``get_indices_in_radius`` and ``voc12/data.py``
``ExtractAffinityLabelInRadius``): the search offsets ``(dy, dx)`` are
``(0, x)`` for ``x = 1 .. radius-1``, then ``(y, x)`` for ``y = 1 ..
radius-1`` and ``x = -(radius-1) .. radius-1`` with ``x^2 + y^2 < radius^2``,
in that order: a half disk without the origin, 34 offsets for radius 5. With
``r = radius - 1`` the "from" pixels are the cropped block
``[0 : h - r, r : w - r]`` (rows y, columns x) of the h x w map, and each is
paired with ``(y + dy, x + dx)`` for every offset, which always lies inside
the map. So pixels in the bottom ``r`` rows and in the ``r`` left and right
columns are never a "from" pixel: pairs whose both ends lie there are absent
(e.g. two horizontal neighbours in column 0), although they are within the
radius; a few corner pixels have no pair at all (for radius 5: ``(0, 0..3)``
and three in each bottom corner, e.g. ``(h-1, 0), (h-1, 1), (h-2, 0)``), so
the walk leaves their scores as they are. Every unordered pair appears at
most once (the offsets are a half disk). Here the crop is derived from the
offsets (bottom = max dy, left = max -dx, right = max dx), which equals
psa's ``radius - 1`` on all three sides for every ``radius >= 2``. Maps
smaller than ``(r + 1) x (2 r + 1)`` have no pair at all (psa fails on
them; here the walk is then the identity).

**The walk** (psa ``network/resnet38_aff.py`` ``forward(to_dense=True)`` and
``infer_aff.py``): the dense matrix ``A`` holds ``a_ij`` at (from, to) and
at (to, from) and 1 on the diagonal; ``A <- A ** beta`` (elementwise, so
the diagonal stays 1); ``T = A / A.sum(0)`` (column-normalised: ``T_ij =
A_ij / d_j`` with ``d_j = sum_i A_ij``); ``T`` is squared ``logt = 8``
times, giving ``T^256``; the scores ``(K, hw)`` become ``scores @ T^256``.
One step ``s <- s @ T`` is ``s_j <- (s_j + sum_(i~j) a_ij^beta s_i) / d_j``,
a weighted average over ``j``'s neighbourhood. :func:`random_walk` applies
that step ``steps`` times with a sparse matrix of ``h w + 2 P h' w'``
entries instead of squaring the dense ``hw x hw`` one: the same result (up to
float rounding) in memory linear in ``h w``.
"""
import warnings
from typing import List, Sequence, Tuple

import torch

Offsets = Sequence[Tuple[int, int]]


def radius_offsets(radius: int = 5) -> List[Tuple[int, int]]:
    """AffinityNet's search offsets, in psa's order.

    Args:
        radius (int): Pairs ``(dy, dx)`` with ``dy^2 + dx^2 < radius^2``.
            Defaults to 5 (psa), which gives 34 offsets.

    Returns:
        list[tuple[int, int]]: ``(dy, dx)`` offsets: ``(0, 1) .. (0,
        radius-1)``, then the rows ``dy = 1 .. radius-1`` from left to right.
    """
    if not isinstance(radius, int) or isinstance(radius, bool) or radius < 2:
        raise ValueError(f'radius must be an int >= 2, got {radius!r}')
    offsets = [(0, dx) for dx in range(1, radius)]
    offsets += [(dy, dx) for dy in range(1, radius)
                for dx in range(-radius + 1, radius)
                if dx * dx + dy * dy < radius * radius]
    return offsets


def pair_margins(offsets: Offsets) -> Tuple[int, int, int]:
    """Rows / columns of the map that are never a "from" pixel.

    Args:
        offsets (Sequence[tuple[int, int]]): ``(dy, dx)`` with ``dy >= 0``.

    Returns:
        tuple[int, int, int]: ``(bottom, left, right)`` margins: ``max dy``,
        ``max -dx`` and ``max dx`` (each at least 0); ``radius - 1`` each for
        :func:`radius_offsets`.
    """
    offsets = list(offsets)
    if not offsets:
        raise ValueError('offsets must not be empty')
    if any(dy < 0 or (dy == 0 and dx <= 0) for dy, dx in offsets):
        raise ValueError('offsets must lie in the half plane dy > 0 or '
                         f'(dy == 0 and dx > 0), got {offsets}')
    bottom = max(dy for dy, _ in offsets)
    left = max(max(-dx for _, dx in offsets), 0)
    right = max(max(dx for _, dx in offsets), 0)
    return bottom, left, right


def pair_grid(height: int, width: int,
              offsets: Offsets) -> Tuple[int, int, int]:
    """Size and column start of the block of "from" pixels.

    Returns:
        tuple[int, int, int]: ``(h', w', left)``: the from-block is rows
        ``[0, h')`` and columns ``[left, left + w')``; ``h'`` or ``w'`` is 0
        when the map is too small for any pair.
    """
    bottom, left, right = pair_margins(offsets)
    return max(height - bottom, 0), max(width - left - right, 0), left


def pair_indices(height: int, width: int, offsets: Offsets,
                 device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Flat (row-major) indices of every pair, psa's ``get_indices_of_pairs``.

    Args:
        height (int): Map height h.
        width (int): Map width w.
        offsets (Sequence[tuple[int, int]]): From :func:`radius_offsets`.
        device (torch.device, optional): Device of the result.

    Returns:
        tuple[Tensor, Tensor]: ``ind_from`` (h' w',) and ``ind_to``
        (P, h' w'), int64 indices into the flattened h x w map; pair
        ``(ind_from[m], ind_to[p, m])`` has affinity
        ``pair_affinity(...)[:, p].flatten(1)[:, m]``.
    """
    hc, wc, left = pair_grid(height, width, offsets)
    full = torch.arange(height * width, device=device).view(height, width)
    ind_from = full[:hc, left:left + wc].reshape(-1)  # (h' w',)
    ind_to = torch.stack([
        full[dy:dy + hc, left + dx:left + dx + wc].reshape(-1)
        for dy, dx in offsets
    ])  # (P, h' w')
    return ind_from, ind_to


def pair_affinity(embedding: torch.Tensor, offsets: Offsets) -> torch.Tensor:
    """Semantic affinity ``a_ij = exp(-mean_d |f_i - f_j|)`` of every pair.

    AffinityNet Eq. 2 (psa uses the mean over channels, not the L1 norm).
    Computed with one shifted slice per offset, so it is differentiable and
    costs P times the embedding, never a pairwise matrix.

    Args:
        embedding (Tensor): Affinity features f, shape (N, D, h, w).
        offsets (Sequence[tuple[int, int]]): From :func:`radius_offsets`.

    Returns:
        Tensor: Affinities in (0, 1], shape (N, P, h', w') (see
        :func:`pair_grid`): entry ``[n, p, y, x]`` pairs pixel
        ``(y, left + x)`` with ``(y + dy_p, left + x + dx_p)``.
    """
    if embedding.dim() != 4:
        raise ValueError('embedding must be (N, D, h, w), got shape '
                         f'{tuple(embedding.shape)}')
    height, width = embedding.shape[2:]
    hc, wc, left = pair_grid(height, width, offsets)
    source = embedding[:, :, :hc, left:left + wc]  # (N, D, h', w')
    affinities = []
    for dy, dx in offsets:
        target = embedding[:, :, dy:dy + hc, left + dx:left + dx + wc]
        affinities.append(
            torch.exp(-(target - source).abs().mean(dim=1)))  # (N, h', w')
    return torch.stack(affinities, dim=1)  # (N, P, h', w')


def transition_matrix(affinity: torch.Tensor, size: Tuple[int, int],
                      offsets: Offsets, beta: float = 8.0) -> torch.Tensor:
    """psa's transition matrix, transposed, sparse and block-diagonal.

    ``A`` (per image, hw x hw): ``a_ij^beta`` at both (i, j) and (j, i) for
    every pair, 1 on the diagonal; psa's ``T = A / A.sum(0)``. This returns
    ``T^T = D^-1 A`` (``D`` the degrees ``d_j = sum_i A_ij``), whose rows
    sum to 1, so that ``scores @ T`` is ``(T^T @ scores^T)^T`` and one walk
    step is one sparse-dense product. Never materialises a dense matrix.

    Args:
        affinity (Tensor): ``a_ij`` from :func:`pair_affinity`, shape
            (N, P, h', w').
        size (tuple[int, int]): ``(h, w)`` of the map the pairs live on.
        offsets (Sequence[tuple[int, int]]): The P offsets of ``affinity``.
        beta (float): Exponent of the affinities (psa's ``--beta``).
            Defaults to 8.

    Returns:
        Tensor: Sparse CSR matrix, shape (N h w, N h w), on ``affinity``'s
        device, at least fp32, block-diagonal over the batch; row ``n h w +
        j`` holds ``A_ij / d_j`` of image n.
    """
    height, width = size
    hc, wc, left = pair_grid(height, width, offsets)
    num, num_pairs = affinity.shape[:2]
    if tuple(affinity.shape[2:]) != (hc, wc) or num_pairs != len(offsets):
        raise ValueError(
            f'affinity of shape {tuple(affinity.shape)} does not fit a '
            f'{height}x{width} map with {len(offsets)} offsets: expected '
            f'(N, {len(offsets)}, {hc}, {wc})')
    dtype = torch.promote_types(affinity.dtype, torch.float32)
    device = affinity.device
    area = height * width
    weight = affinity.to(dtype).pow(beta).reshape(num, num_pairs, -1)
    # (N, P, M) with M = h' w'
    ind_from, ind_to = pair_indices(height, width, offsets, device)
    ind_from = ind_from.expand(num_pairs, -1)  # (P, M)

    # Degrees d_j = 1 + sum of the weights of the pairs touching j.
    degree = torch.ones(num, area, dtype=dtype, device=device)  # (N, hw)
    flat_w = weight.reshape(num, -1)  # (N, P M)
    degree.scatter_add_(1, ind_from.reshape(1, -1).expand(num, -1), flat_w)
    degree.scatter_add_(1, ind_to.reshape(1, -1).expand(num, -1), flat_w)

    base = (torch.arange(num, device=device) * area)[:, None]  # (N, 1)
    src = ind_from.reshape(1, -1) + base  # (N, P M)
    dst = ind_to.reshape(1, -1) + base  # (N, P M)
    nodes = torch.arange(area, device=device)[None] + base  # (N, hw)
    deg = degree.reshape(-1)  # (N hw,)
    rows = torch.cat([src.reshape(-1), dst.reshape(-1), nodes.reshape(-1)])
    cols = torch.cat([dst.reshape(-1), src.reshape(-1), nodes.reshape(-1)])
    vals = torch.cat([flat_w.reshape(-1), flat_w.reshape(-1),
                      torch.ones_like(deg)]) / deg[rows]
    matrix = torch.sparse_coo_tensor(
        torch.stack([rows, cols]),
        vals, (num * area, num * area),
        check_invariants=False)  # indices are in range by construction
    with warnings.catch_warnings():
        # torch's "Sparse CSR tensor support is in beta state" notice.
        warnings.filterwarnings('ignore', message='.*Sparse CSR.*beta.*')
        return matrix.coalesce().to_sparse_csr()


def random_walk(scores: torch.Tensor,
                affinity: torch.Tensor,
                offsets: Offsets,
                beta: float = 8.0,
                steps: int = 256) -> torch.Tensor:
    """Propagate scores with AffinityNet's random walk (psa ``infer_aff.py``).

    Computes ``scores @ T^steps`` per image (psa: ``T`` squared ``logt``
    times, ``steps = 2^logt = 256``) as ``steps`` sparse products with
    :func:`transition_matrix`: memory linear in h w, no dense hw x hw
    matrix. For inference (no gradient through the sparse products).

    Args:
        scores (Tensor): Scores to propagate, shape (N, K, h, w).
        affinity (Tensor): ``a_ij`` from :func:`pair_affinity` on an
            (N, D, h, w) embedding, shape (N, P, h', w').
        offsets (Sequence[tuple[int, int]]): The P offsets of ``affinity``.
        beta (float): Affinity exponent. Defaults to 8 (psa).
        steps (int): Number of walk steps t. Defaults to 256 (psa's
            ``2 ** logt``, logt = 8); 0 returns the scores unchanged.

    Returns:
        Tensor: Propagated scores, shape (N, K, h, w), in the dtype of
        ``scores`` (computed in at least fp32).
    """
    if scores.dim() != 4:
        raise ValueError('scores must be (N, K, h, w), got shape '
                         f'{tuple(scores.shape)}')
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f'steps must be an int >= 0, got {steps!r}')
    num, channels, height, width = scores.shape
    if affinity.shape[0] != num:
        raise ValueError(f'affinity has batch size {affinity.shape[0]} but '
                         f'scores have {num}')
    dtype = torch.promote_types(
        torch.promote_types(scores.dtype, affinity.dtype), torch.float32)
    matrix = transition_matrix(
        affinity.to(dtype), (height, width), offsets, beta)
    # (N h w, K): one column per channel, the batch stacked block by block;
    # contiguous, as the sparse product is many times slower on a strided
    # operand.
    state = scores.to(dtype).permute(0, 2, 3, 1).reshape(-1, channels)
    state = state.contiguous()
    for _ in range(steps):
        state = matrix @ state  # (N h w, K)
    state = state.reshape(num, height, width, channels)
    return state.permute(0, 3, 1, 2).to(scores.dtype).contiguous()
