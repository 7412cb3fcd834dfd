import math

import pytest
import torch

from mmcyc.models.utils.cycle_consistency import (
    cycle_consistency_loss, distance_mask, distance_mask_offsets,
    gather_vectors, log_scaled_softmax, propagate, retrieve,
    return_probability, scaled_softmax, select_positions)


def test_distance_mask_offsets_r5_hand_computed():
    offsets, weights = distance_mask_offsets(5)
    # D = dy^2 + dx^2 < 5: centre (D=0), 4-neighbours (1), diagonals (2),
    # two steps straight (4); (2, 1) has D = 5 and is out.
    expected = {(0, 0): 5.0}
    expected.update({o: 4.0 for o in [(-1, 0), (1, 0), (0, -1), (0, 1)]})
    expected.update({o: 3.0 for o in [(-1, -1), (-1, 1), (1, -1), (1, 1)]})
    expected.update({o: 1.0 for o in [(-2, 0), (2, 0), (0, -2), (0, 2)]})
    assert dict(zip(offsets, weights)) == expected
    assert len(offsets) == 13
    assert offsets[0] == (0, 0)


def test_distance_mask_offsets_small_radii():
    assert distance_mask_offsets(1) == ([(0, 0)], [1.0])
    offsets, weights = distance_mask_offsets(2)
    assert sorted(weights) == [1.0, 1.0, 1.0, 1.0, 2.0]
    with pytest.raises(ValueError, match='radius must be >= 1, got 0'):
        distance_mask_offsets(0)


@pytest.mark.parametrize('position', [(0, 0), (0, 3), (2, 2), (4, 1)])
def test_distance_mask_matches_dense_eq10_11(position):
    height, width, radius = 5, 6, 5
    y, x = position
    index = torch.tensor([[y * width + x]])
    neighbour, weight = distance_mask(index, (height, width), radius)
    sparse = torch.zeros(height * width)
    sparse.index_add_(0, neighbour.flatten(), weight.flatten())
    dense = torch.zeros(height, width)
    for i in range(height):
        for j in range(width):
            dist = (y - i)**2 + (x - j)**2
            dense[i, j] = radius - dist if dist < radius else 0
    assert torch.equal(sparse, dense.flatten())


def test_scaled_softmax_hand_computed():
    # alpha * W / max W = 2 * [1, 2] / 2 = [1, 2]
    prob = scaled_softmax(torch.tensor([1.0, 2.0]), alpha=2.0)
    e = math.e
    assert torch.allclose(prob, torch.tensor([1 / (1 + e), e / (1 + e)]))


def test_scaled_softmax_nonpositive_max_keeps_order():
    # max = -1: divide by |max| = 1 -> logits [-2, -1]; the paper's literal
    # division by -1 would reverse the order.
    prob = scaled_softmax(torch.tensor([-2.0, -1.0]), alpha=1.0)
    e = math.e
    assert torch.allclose(prob, torch.tensor([1 / (1 + e), e / (1 + e)]))
    # max = 0: divide by eps = 1e-6 -> logits [0, -2, -4]
    prob = scaled_softmax(torch.tensor([0.0, -1e-7, -2e-7]), alpha=20.0)
    assert torch.allclose(prob, torch.softmax(torch.tensor([0., -2, -4]), 0))
    # an all-zero row is uniform, not NaN
    prob = scaled_softmax(torch.zeros(4), alpha=20.0)
    assert torch.equal(prob, torch.full((4, ), 0.25))


def test_log_scaled_softmax_never_minus_inf():
    sim = torch.tensor([[0.0, 1.0], [3.0, 1.0]])
    assert torch.allclose(
        log_scaled_softmax(sim, 3.0), scaled_softmax(sim, 3.0).log())
    log_prob = log_scaled_softmax(torch.tensor([0.0, 1.0]), alpha=2000.0)
    assert torch.isfinite(log_prob).all()
    assert torch.allclose(log_prob, torch.tensor([-2000.0, 0.0]))


def test_select_positions_hand_case():
    cam = torch.zeros(2, 2, 2, 2)
    cam[0, 0] = torch.tensor([[0.5, 0.1], [0.9, 0.3]])  # > 0.3 at 0 and 2
    cam[0, 1] = torch.tensor([[0.0, 0.8], [0.0, 0.0]])  # not shared
    cam[1, 1] = torch.tensor([[0.0, 0.0], [0.0, 0.4]])  # > 0.3 at 3
    shared = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    index, valid, num = select_positions(cam, shared, beta1=0.3)
    assert index.tolist() == [[0, 2], [3, 0]]
    assert valid.tolist() == [[True, True], [True, False]]
    assert num.tolist() == [2, 1]


def test_select_positions_cap_is_seeded_subset():
    gen = torch.Generator().manual_seed(0)
    cam = torch.rand(3, 4, 6, 6, generator=gen)
    shared = torch.ones(3, 4)
    full, full_valid, num = select_positions(cam, shared, beta1=0.3)
    picks = [
        select_positions(cam, shared, 0.3, max_selected=5,
                         generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    (index, valid, capped_num), (index2, _, _) = picks
    assert torch.equal(index, index2)
    assert index.shape == (3, 5) and valid.all()
    assert torch.equal(capped_num, num)
    for n in range(3):
        assert set(index[n].tolist()) <= set(full[n][full_valid[n]].tolist())
        assert len(set(index[n].tolist())) == 5


def test_gather_propagate_retrieve_match_per_vector():
    gen = torch.Generator().manual_seed(1)
    feat_a = torch.rand(2, 3, 4, 5, generator=gen)
    feat_b = torch.rand(2, 3, 3, 2, generator=gen)
    index = torch.tensor([[0, 7, 19], [4, 4, 11]])
    vectors = gather_vectors(feat_a, index)  # (2, 3, 3)
    neighbours = propagate(vectors, feat_b, alpha=20.0)
    log_wb = retrieve(neighbours, feat_a, alpha=20.0)
    assert log_wb.shape == (2, 3, 20)
    for n in range(2):
        flat_a, flat_b = feat_a[n].flatten(1), feat_b[n].flatten(1)
        for s in range(3):
            v = flat_a[:, index[n, s]]
            assert torch.equal(vectors[n, s], v)
            wf = v @ flat_b
            wf = torch.softmax(20 * wf / wf.max(), 0)
            vi = flat_b @ wf
            wb = vi @ flat_a
            wb = torch.softmax(20 * wb / wb.max(), 0)
            assert torch.allclose(neighbours[n, s], vi, atol=1e-6)
            assert torch.allclose(log_wb[n, s].exp(), wb, atol=1e-6)
    wb_self = return_probability(log_wb, index)
    assert torch.allclose(wb_self, log_wb.exp().gather(2, index[..., None])[
        ..., 0])


def test_cycle_consistency_loss_hand_case():
    # one pair, grid 1x3, radius 2: weights 2 (centre) and 1 (left/right)
    prob = torch.tensor([[[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]])
    index = torch.tensor([[0, 2]])
    valid = torch.tensor([[True, True]])
    loss, keep, wb_self = cycle_consistency_loss(
        prob.log(), index, valid, (1, 3), radius=2, beta2=0.55)
    # position 0: W^b(0) = 0.5 <= 0.55 -> rejected; position 2 kept
    assert keep.tolist() == [[False, True]]
    assert torch.allclose(wb_self, torch.tensor([[0.5, 0.6]]))
    expected = -(2 * math.log(0.6) + 1 * math.log(0.2))
    assert torch.allclose(loss, torch.tensor(expected))


def test_cycle_consistency_loss_empty_is_connected_zero():
    log_wb = torch.randn(2, 3, 9).log_softmax(-1).requires_grad_()
    index = torch.zeros(2, 3, dtype=torch.long)
    valid = torch.zeros(2, 3, dtype=torch.bool)
    loss, keep, _ = cycle_consistency_loss(log_wb, index, valid, (3, 3), 5,
                                           0.0)
    assert loss.item() == 0 and not keep.any()
    loss.backward()
    assert torch.equal(log_wb.grad, torch.zeros_like(log_wb))


@pytest.mark.parametrize('max_selected', [None, 3, 10, 100])
def test_select_positions_fixed_size_extends_the_exact_selection(
        max_selected):
    gen = torch.Generator().manual_seed(3)
    cam_a = torch.rand(3, 2, 4, 5, generator=gen)  # ~14 candidates per pair
    cam_a[2] = 0.0  # a pair without candidates
    shared = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    exact = select_positions(cam_a, shared, 0.3, max_selected,
                             torch.Generator().manual_seed(0))
    fixed = select_positions(cam_a, shared, 0.3, max_selected,
                             torch.Generator().manual_seed(0),
                             fixed_size=True)
    size = 20 if max_selected is None else min(max_selected, 20)
    assert fixed[0].shape == fixed[1].shape == (3, size)
    length = exact[0].shape[1]
    # the exact S-long selection is a prefix; the rest is padding
    assert torch.equal(fixed[0][:, :length], exact[0])
    assert torch.equal(fixed[1][:, :length], exact[1])
    assert not fixed[1][:, length:].any()
    assert not fixed[0][:, length:].any()
    assert torch.equal(fixed[2], exact[2])
