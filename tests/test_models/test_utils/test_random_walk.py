import numpy as np
import pytest
import torch

from mmcyc.models.utils.random_walk import (pair_affinity, pair_grid,
                                            pair_indices, pair_margins,
                                            radius_offsets, random_walk,
                                            transition_matrix)


def brute_force_offsets(radius):
    """Every (dy, dx) of the half disk, in raster order."""
    return sorted((dy, dx) for dy in range(-radius, radius + 1)
                  for dx in range(-radius, radius + 1)
                  if dy * dy + dx * dx < radius * radius and (
                      dy > 0 or (dy == 0 and dx > 0)))


def psa_get_indices_of_pairs(radius, size):
    """Transcription of psa ``tool/pyutils.py`` ``get_indices_of_pairs``."""
    search_dist = [(0, x) for x in range(1, radius)]
    for y in range(1, radius):
        for x in range(-radius + 1, radius):
            if x * x + y * y < radius * radius:
                search_dist.append((y, x))
    radius_floor = radius - 1
    full = np.arange(size[0] * size[1], dtype=np.int64).reshape(size)
    cropped_height = size[0] - radius_floor
    cropped_width = size[1] - 2 * radius_floor
    ind_from = full[:-radius_floor, radius_floor:-radius_floor].reshape(-1)
    ind_to = [
        full[dy:dy + cropped_height, radius_floor + dx:radius_floor + dx +
             cropped_width].reshape(-1) for dy, dx in search_dist
    ]
    return ind_from, np.concatenate(ind_to)


def brute_force_pairs(height, width, radius):
    """(from, to) flat pairs: from in psa's cropped block, to within radius."""
    floor = radius - 1
    pairs = set()
    for y in range(height - floor):
        for x in range(floor, width - floor):
            for v in range(height):
                for u in range(width):
                    later = v > y or (v == y and u > x)
                    if later and (v - y)**2 + (u - x)**2 < radius**2:
                        pairs.add((y * width + x, v * width + u))
    return pairs


def dense_walk(embedding, scores, radius, beta, steps):
    """psa's dense walk, built pair by pair in float64."""
    num, channels, height, width = scores.shape
    area = height * width
    out = torch.zeros(num, channels, area, dtype=torch.float64)
    for n in range(num):
        feats = embedding[n].double().reshape(embedding.shape[1], -1)
        aff = torch.eye(area, dtype=torch.float64)
        for i, j in brute_force_pairs(height, width, radius):
            a = torch.exp(-(feats[:, i] - feats[:, j]).abs().mean())
            aff[i, j] = aff[j, i] = a**beta
        trans = aff / aff.sum(dim=0, keepdim=True)
        trans = torch.linalg.matrix_power(trans, steps)
        out[n] = scores[n].double().reshape(channels, -1) @ trans
    return out.reshape(num, channels, height, width)


def test_radius_offsets_match_brute_force_half_disk():
    offsets = radius_offsets(5)
    assert len(offsets) == 34
    assert offsets == brute_force_offsets(5)
    assert offsets[:5] == [(0, 1), (0, 2), (0, 3), (0, 4), (1, -4)]
    for radius in (2, 3, 4, 6):
        assert radius_offsets(radius) == brute_force_offsets(radius)
    assert pair_margins(offsets) == (4, 4, 4)
    assert pair_margins(radius_offsets(3)) == (2, 2, 2)


@pytest.mark.parametrize('size', [(8, 9), (10, 13), (12, 12)])
def test_pair_indices_match_psa_and_brute_force(size):
    offsets = radius_offsets(5)
    ind_from, ind_to = pair_indices(*size, offsets)
    psa_from, psa_to = psa_get_indices_of_pairs(5, size)
    assert np.array_equal(ind_from.numpy(), psa_from)
    assert np.array_equal(ind_to.reshape(-1).numpy(), psa_to)
    pairs = set(zip(ind_from.expand_as(ind_to).reshape(-1).tolist(),
                    ind_to.reshape(-1).tolist()))
    assert pairs == brute_force_pairs(*size, 5)
    assert len(pairs) == ind_to.numel()  # no pair twice


def test_pair_affinity_against_brute_force():
    gen = torch.Generator().manual_seed(0)
    embedding = torch.rand(2, 3, 7, 10, generator=gen)
    offsets = radius_offsets(3)  # margins 2: from-block rows 0-4, cols 2-7
    aff = pair_affinity(embedding, offsets)
    assert aff.shape == (2, len(offsets), 5, 6)
    assert pair_grid(7, 10, offsets) == (5, 6, 2)
    for n in range(2):
        for p, (dy, dx) in enumerate(offsets):
            for y in range(5):
                for x in range(6):
                    fi = embedding[n, :, y, x + 2].double()
                    fj = embedding[n, :, y + dy, x + 2 + dx].double()
                    expected = torch.exp(-(fi - fj).abs().mean())
                    assert abs(aff[n, p, y, x].item() - expected.item()) < 1e-6


def test_pair_affinity_is_differentiable():
    embedding = torch.rand(1, 4, 6, 10, requires_grad=True)
    pair_affinity(embedding, radius_offsets(5)).sum().backward()
    assert embedding.grad is not None and torch.isfinite(embedding.grad).all()


@pytest.mark.parametrize('size,steps', [((8, 9), 256), ((10, 13), 256),
                                        ((9, 11), 3)])
def test_random_walk_matches_dense_matrix_power(size, steps):
    gen = torch.Generator().manual_seed(1)
    # A small embedding range keeps a^beta far from 0, so scores really
    # travel over the 256 steps.
    embedding = torch.rand(2, 4, *size, generator=gen) * 0.3
    scores = torch.rand(2, 3, *size, generator=gen)
    offsets = radius_offsets(5)
    out = random_walk(scores, pair_affinity(embedding, offsets), offsets,
                      beta=8.0, steps=steps)
    expected = dense_walk(embedding, scores, 5, 8.0, steps)
    assert out.shape == scores.shape and out.dtype == scores.dtype
    rel = (out.double() - expected).abs().max() / expected.abs().max()
    assert rel < 1e-4
    # The walk moved the scores (otherwise the comparison says little).
    assert (expected - scores.double()).abs().max() > 0.05


def test_transition_matrix_structure():
    offsets = radius_offsets(5)
    gen = torch.Generator().manual_seed(2)
    aff = pair_affinity(torch.rand(2, 3, 8, 10, generator=gen), offsets)
    matrix = transition_matrix(aff, (8, 10), offsets, beta=8.0)
    assert matrix.layout == torch.sparse_csr
    area, pairs = 80, len(offsets) * 4 * 2
    assert matrix.shape == (2 * area, 2 * area)
    assert matrix._nnz() == 2 * (area + 2 * pairs)
    dense = matrix.to_dense()
    assert torch.allclose(dense.sum(dim=1), torch.ones(2 * area))
    assert dense[:area, area:].abs().sum() == 0  # block diagonal
    assert dense[area:, :area].abs().sum() == 0
    # Row j holds A_ij / d_j: D @ M is the symmetric matrix A.
    sym = dense[:area] * (1 / dense[:area].diagonal())[:, None]
    assert torch.allclose(sym[:, :area], sym[:, :area].T, atol=1e-6)


def test_random_walk_identity_cases():
    offsets = radius_offsets(5)
    scores = torch.rand(1, 2, 4, 8)  # too small for any pair
    aff = pair_affinity(torch.rand(1, 3, 4, 8), offsets)
    assert aff.shape == (1, 34, 0, 0)
    assert torch.allclose(random_walk(scores, aff, offsets), scores)
    scores = torch.rand(1, 2, 8, 9)
    aff = pair_affinity(torch.rand(1, 3, 8, 9), offsets)
    assert torch.equal(random_walk(scores, aff, offsets, steps=0), scores)


def test_psa_pair_set_leaves_corner_pixels_isolated():
    # (0, 0..3) are never a "from" pixel and no "from" pixel reaches them,
    # nor three pixels in each bottom corner. Their scores stay put.
    offsets = radius_offsets(5)
    height, width = 10, 12
    ind_from, ind_to = pair_indices(height, width, offsets)
    touched = set(ind_from.tolist()) | set(ind_to.reshape(-1).tolist())
    isolated = [divmod(i, width)
                for i in sorted(set(range(height * width)) - touched)]
    assert isolated == [(0, 0), (0, 1), (0, 2), (0, 3), (8, 0), (8, 11),
                        (9, 0), (9, 1), (9, 10), (9, 11)]
    scores = torch.zeros(1, 1, height, width)
    scores[0, 0, 0, 0] = 1.0
    aff = pair_affinity(torch.zeros(1, 2, height, width), offsets)
    out = random_walk(scores, aff, offsets)
    assert torch.equal(out, scores)


def test_bad_arguments():
    offsets = radius_offsets(5)
    with pytest.raises(ValueError, match='radius'):
        radius_offsets(1)
    with pytest.raises(ValueError, match='half plane'):
        pair_margins([(0, -1)])
    with pytest.raises(ValueError, match='embedding'):
        pair_affinity(torch.rand(3, 8, 9), offsets)
    aff = pair_affinity(torch.rand(1, 3, 8, 9), offsets)
    with pytest.raises(ValueError, match='does not fit'):
        transition_matrix(aff, (8, 10), offsets)
    with pytest.raises(ValueError, match='steps'):
        random_walk(torch.rand(1, 2, 8, 9), aff, offsets, steps=-1)
    with pytest.raises(ValueError, match='batch'):
        random_walk(torch.rand(2, 2, 8, 9), aff, offsets)
