import math

import pytest
import torch
import torch.nn.functional as F

from mmcyc.models.utils.cam_refinement import (apply_refinement,
                                               class_refinement_maps,
                                               refine_cam, similarity_maps)


def brute_wf(vector, feat, alpha):
    """Eq. 3-4 for one vector with Python floats: list over positions."""
    flat = feat.flatten(1).tolist()  # D lists of P values
    num_pos = len(flat[0])
    sim = [sum(flat[d][p] * float(vector[d]) for d in range(len(flat)))
           for p in range(num_pos)]
    peak = max(sim)
    exps = [math.exp(alpha * s / peak) for s in sim]
    total = sum(exps)
    return [e / total for e in exps]


def brute_eq14(cam, feat, vectors, classes, labels, alpha, epsilon, bg):
    """Eq. 14 literally: one reference after the other, one position at a
    time, for classes of the label."""
    out = cam.clone()
    _, height, width = cam.shape
    for vector, cls in zip(vectors, classes.tolist()):
        if labels[cls] < 0.5:
            continue
        wf = brute_wf(vector, feat, alpha)
        for i in range(height):
            for j in range(width):
                value = wf[i * width + j]
                if value > bg / epsilon:
                    out[cls, i, j] = max(float(out[cls, i, j]),
                                         epsilon * value)
    return out


@pytest.fixture
def case():
    gen = torch.Generator().manual_seed(0)
    feat = torch.rand(4, 2, 3, generator=gen)  # (D, h, w), positive sims
    vectors = torch.rand(7, 4, generator=gen)  # (S, D)
    classes = torch.tensor([0, 2, 2, 1, 0, 3, 2])
    cam = torch.rand(4, 2, 3, generator=gen) * 0.6
    labels = torch.tensor([1., 0., 1., 0.])
    return cam, feat, vectors, classes, labels


def test_similarity_maps_brute_force(case):
    _, feat, vectors, _, _ = case
    wf = similarity_maps(vectors, feat, alpha=3.0)
    assert wf.shape == (7, 6) and wf.dtype == torch.float32
    for s in range(7):
        assert wf[s].tolist() == pytest.approx(
            brute_wf(vectors[s], feat, 3.0), rel=1e-5)


def test_similarity_maps_fp16_inputs_computed_fp32(case):
    _, feat, vectors, _, _ = case
    wf = similarity_maps(vectors.half(), feat.half(), alpha=3.0)
    assert wf.dtype == torch.float32
    assert torch.allclose(wf.sum(1), torch.ones(7))


def test_class_refinement_maps_brute_force(case):
    _, feat, vectors, classes, _ = case
    ref = class_refinement_maps(vectors, classes, feat, 5, alpha=3.0,
                                epsilon=2.0, chunk_size=3)
    assert ref.shape == (5, 2, 3)
    expected = torch.zeros(5, 6)
    for vector, cls in zip(vectors, classes.tolist()):
        wf = torch.tensor(brute_wf(vector, feat, 3.0))
        expected[cls] = torch.maximum(expected[cls], 2.0 * wf)
    assert torch.allclose(ref.flatten(1), expected, rtol=1e-5)
    assert (ref[4] == 0).all()  # class 4 has no reference


@pytest.mark.parametrize('chunk_size', [1, 2, 5, None])
def test_chunking_gives_the_same_result(case, chunk_size):
    cam, feat, vectors, classes, labels = case
    full = refine_cam(cam, feat, vectors, classes, labels, 3.0, 2.0, 0.2,
                      chunk_size=None)
    chunked = refine_cam(cam, feat, vectors, classes, labels, 3.0, 2.0, 0.2,
                         chunk_size=chunk_size)
    assert torch.allclose(full, chunked, atol=1e-7)


@pytest.mark.parametrize('alpha,bg', [(3.0, 0.2), (2.0, 0.3), (8.0, 0.0)])
def test_refine_cam_matches_eq14_loop(case, alpha, bg):
    cam, feat, vectors, classes, labels = case
    out = refine_cam(cam, feat, vectors, classes, labels, alpha, 2.0, bg,
                     chunk_size=2)
    expected = brute_eq14(cam, feat, vectors, classes, labels, alpha, 2.0, bg)
    assert torch.allclose(out, expected, atol=1e-6)
    # something changed, only in the classes of the label, never downwards
    assert not torch.equal(out, cam)
    assert torch.equal(out[1], cam[1]) and torch.equal(out[3], cam[3])
    assert (out >= cam).all()


def test_threshold_bg_over_epsilon():
    # one vector, two positions: W^f = (0.7, 0.3) at alpha = log(7/3)
    feat = torch.tensor([[[1.0, 0.0]]])  # (D=1, 1, 2)
    vectors = torch.tensor([[1.0]])
    alpha = math.log(7 / 3)
    cam = torch.zeros(1, 1, 2)
    out = refine_cam(cam, feat, vectors, torch.tensor([0]), torch.ones(1),
                     alpha, epsilon=2.0, bg_score=0.8)
    # eps W = (1.4, 0.6): only the first is above Bg = 0.8
    assert out.flatten().tolist() == pytest.approx([1.4, 0.0])
    high = torch.full((1, 1, 2), 1.5)
    out = refine_cam(high, feat, vectors, torch.tensor([0]), torch.ones(1),
                     alpha, epsilon=2.0, bg_score=0.8)
    assert torch.equal(out, high)  # max keeps the larger CAM


def test_no_reference_is_identity(case):
    cam, feat, _, _, labels = case
    out = refine_cam(cam, feat, torch.zeros(0, 4),
                     torch.zeros(0, dtype=torch.long), labels)
    assert torch.equal(out, cam)


def test_apply_refinement_replicates_cells_before_threshold():
    gen = torch.Generator().manual_seed(1)
    ref = torch.rand(3, 2, 2, generator=gen) * 0.6  # (C, h, w)
    cam = torch.rand(3, 4, 4, generator=gen) * 0.5  # (C, H, W)
    update = torch.tensor([True, False, True])
    out = apply_refinement(cam, ref, update, bg_score=0.25)
    for c in range(3):
        for i in range(4):
            for j in range(4):
                cell = float(ref[c, i // 2, j // 2])  # stride 2
                want = float(cam[c, i, j])
                if update[c] and cell > 0.25:
                    want = max(want, cell)
                assert float(out[c, i, j]) == pytest.approx(want)
    # equal sizes: no interpolation, Eq. 14 exactly
    same = apply_refinement(cam[:, :2, :2], ref, update, 0.25)
    expected = torch.where(update[:, None, None] & (ref > 0.25),
                           torch.maximum(cam[:, :2, :2], ref), cam[:, :2, :2])
    assert torch.equal(same, expected)


def literal_eq14(cam, feat, vectors, classes, labels, alpha, epsilon, bg,
                 stride):
    """Eq. 14 reference by reference at the CAM's size, written with torch
    ops independently of mmcyc: W^f_s = softmax(alpha v.F / max v.F) on the
    (h, w) grid, replicated cell by cell in psa's alignment (pixel (y, x) in
    cell (y // stride, x // stride)), then the thresholded maximum. In fp64:
    the reference value that mmcyc's fp32 result must match."""
    cam, feat, vectors = cam.double(), feat.double(), vectors.double()
    out = cam.clone()
    _, height, width = cam.shape
    _, grid_h, grid_w = feat.shape
    for vector, cls in zip(vectors, classes.tolist()):
        sim = torch.einsum('d,dhw->hw', vector, feat)  # (h, w)
        wf = torch.softmax((alpha * sim / sim.max()).flatten(), 0)
        wf = wf.view(grid_h, grid_w)
        up = wf.repeat_interleave(stride, 0).repeat_interleave(stride, 1)
        up = up[:height, :width]  # the padding cells' part is dropped
        take = (up > bg / epsilon) & bool(labels[cls] > 0.5)
        out[cls] = torch.where(take, torch.maximum(out[cls], epsilon * up),
                               out[cls])
    return out


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
@pytest.mark.parametrize('size,grid,stride,given', [
    ((20, 27), (3, 4), 8, True),  # psa's stride 8, not a multiple of 8
    ((20, 27), (3, 4), 7, False),  # the same sizes, stride inferred (7)
    ((61, 70), (8, 9), 8, False),  # >= 8 cells a side: inferred 8
    ((5, 6), (5, 6), 1, False),  # CAM on the grid: Eq. 14 on the grid
])
def test_refine_cam_equals_literal_eq14_per_reference(seed, size, grid,
                                                      stride, given):
    gen = torch.Generator().manual_seed(seed)
    num_classes, channels, num_refs = 5, 8, 40
    feat = torch.rand(channels, *grid, generator=gen)
    vectors = torch.rand(num_refs, channels, generator=gen)
    classes = torch.randint(0, num_classes, (num_refs, ), generator=gen)
    labels = torch.tensor([1., 0., 1., 1., 0.])  # 1 and 4 are not in y_t
    cam = torch.rand(num_classes, *size, generator=gen) * 0.6
    # mmcyc's fp32 rounding grows with alpha (up to 1.3e-6 from fp64 here
    # at the paper's 20, no threshold flipped); up to 12 it stays < 6e-7
    alpha = (8.0, 10.0, 11.0, 12.0)[seed]
    out = refine_cam(cam, feat, vectors, classes, labels, alpha, 2.0, 0.2,
                     chunk_size=7, stride=stride if given else None)
    expected = literal_eq14(cam, feat, vectors, classes, labels, alpha, 2.0,
                            0.2, stride)
    assert out.shape == cam.shape and out.dtype == cam.dtype
    assert torch.allclose(out.double(), expected, atol=1e-6, rtol=0)
    assert not torch.equal(out, cam)
    assert torch.equal(out[1], cam[1]) and torch.equal(out[4], cam[4])


def test_bilinear_upsampling_of_the_maximum_would_pass_bg_between_cells():
    """The old rule (R upsampled bilinearly, then thresholded) changed a
    pixel that no single reference reaches; cell replication does not."""
    # a 1x4 grid with one-hot features: v.F = v, and with alpha = 1 and
    # max v = 1, W^f = softmax(v) is any distribution we choose
    feat = torch.eye(4)[:, None, :]  # (D=4, h=1, w=4)
    targets = torch.tensor([[0.2, 0.001, 0.4, 0.399],  # A: high in cell 0
                            [0.001, 0.095, 0.452, 0.452]])  # B: cell 1 low
    vectors = 1 + torch.log(targets / targets.amax(1, keepdim=True))
    classes, labels = torch.tensor([0, 0]), torch.ones(1)
    wf = similarity_maps(vectors, feat, alpha=1.0)  # (2, 4)
    assert torch.allclose(wf, targets, atol=1e-6)
    cam = torch.zeros(1, 8, 32)  # stride 8: pixel x lies in cell x // 8
    refs = 2.0 * wf.view(2, 1, 1, 4)  # epsilon W^f, (S, C=1, 1, 4)
    old_r = F.interpolate(refs.amax(0)[None], size=(8, 32), mode='bilinear',
                          align_corners=False)[0]  # (1, 8, 32)
    old_each = F.interpolate(refs, size=(8, 32), mode='bilinear',
                             align_corners=False)  # (2, 1, 8, 32)
    # pixel x = 8 (first of cell 1): 0.4375 R(cell 0) + 0.5625 R(cell 1)
    assert old_r[0, 0, 8] > 0.2  # the old code took 0.28 there
    assert (old_each[:, 0, 0, 8] <= 0.2).all()  # no reference, upsampled
    assert (refs[:, 0, 0, 1] <= 0.2).all()  # no reference in cell 1
    out = refine_cam(cam, feat, vectors, classes, labels, alpha=1.0,
                     epsilon=2.0, bg_score=0.2)
    assert (out[0, :, 8:16] == 0).all()  # cell 1 is left unchanged
    assert torch.allclose(out[0, :, :8], torch.full((8, 8), 0.4))
    assert torch.allclose(out[0, :, 16:24], torch.full((8, 8), 0.904))
    assert torch.allclose(out[0, :, 24:], torch.full((8, 8), 0.904))


def test_bad_inputs(case):
    cam, feat, vectors, classes, labels = case
    with pytest.raises(ValueError, match='chunk_size'):
        refine_cam(cam, feat, vectors, classes, labels, chunk_size=0)
    with pytest.raises(ValueError, match=r'labels must have shape \(4, \)'):
        refine_cam(cam, feat, vectors, classes, labels[:3])
    with pytest.raises(ValueError, match='vectors'):
        similarity_maps(vectors[:, :3], feat, 1.0)
    with pytest.raises(ValueError, match='reference classes'):
        class_refinement_maps(vectors, classes + 3, feat, 4, 1.0, 2.0)
    with pytest.raises(ValueError, match='expected cam'):
        apply_refinement(cam, cam[:2], torch.ones(4, dtype=torch.bool), 0.2)
    # (H, W) must lie on the feature grid (psa's alignment)
    with pytest.raises(ValueError, match=r'a 9x3 map does not lie on a 2x3'):
        refine_cam(torch.rand(4, 9, 3), feat, vectors, classes, labels)
    with pytest.raises(ValueError, match=r'4x6 map .* 2x3 .* stride 3'):
        apply_refinement(torch.rand(4, 4, 6), torch.rand(4, 2, 3),
                         torch.ones(4, dtype=torch.bool), 0.2, stride=3)
