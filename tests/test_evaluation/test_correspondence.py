"""Part-correspondence counting (mmcyc.evaluation.functional.correspondence)
on hand-made features, part maps and CAMs."""
import numpy as np
import pytest
import torch

from mmcyc.evaluation.functional import (cells_to_grid, class_cells,
                                         class_separation_hits,
                                         correspondence_hits,
                                         correspondence_summary,
                                         object_correspondence_hits,
                                         part_cells, peak_cells,
                                         reference_mask)
from mmcyc.models.utils.cam_refinement import similarity_maps

C, P = 2, 2  # classes, parts


def part_map(cells):
    """(class_id, role) maps from a grid of (c, k) / 'b<c>' / None cells.

    ``(c, k)``: part k of class c; ``('b', c)``: body of class c; None:
    background.
    """
    class_id = np.zeros((len(cells), len(cells[0])), np.int64)
    role = np.full(class_id.shape, -1, np.int64)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            if cell is None:
                continue
            if cell[0] == 'b':
                class_id[i, j], role[i, j] = cell[1], 0
            else:
                class_id[i, j], role[i, j] = cell[0], 1 + cell[1]
    return class_id, role


def one_hot_features(cells, dim=8):
    """(dim, h, w): cell labelled (c, k) gets e_{2 (c - 1) + k}; a body of
    class c e_{4 + c}; background e_7."""
    feat = torch.zeros(dim, len(cells), len(cells[0]))
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            if cell is None:
                feat[7, i, j] = 1
            elif cell[0] == 'b':
                feat[4 + cell[1], i, j] = 1
            else:
                feat[2 * (cell[0] - 1) + cell[1], i, j] = 1
    return feat


# stride 1: every pixel is a cell, fractions are 0 / 1
SOURCE = [[(1, 0), (1, 1), None],
          [(2, 0), ('b', 1), None]]
TARGET = [[None, ('b', 1), (1, 1)],
          [(2, 0), (1, 0), ('b', 2)]]


def pair_inputs(source=SOURCE, target=TARGET, cam=None):
    frac_s = part_cells(*part_map(source), C, P, stride=1)
    frac_t = part_cells(*part_map(target), C, P, stride=1)
    if cam is None:
        cam = torch.ones(C, len(source), len(source[0]))
    return frac_s, cam, frac_t


def test_known_correspondences_are_all_hits():
    frac_s, cam, frac_t = pair_inputs()
    hits, counts = correspondence_hits(one_hot_features(SOURCE), cam, frac_s,
                                       one_hot_features(TARGET), frac_t, 0.3)
    # references: (1, 0), (1, 1), (2, 0); all visible in t; (2, 1) absent
    assert counts.tolist() == [[1, 1], [1, 0]]
    assert hits.tolist() == counts.tolist()
    summary = correspondence_summary(hits, counts, ['cat', 'dog'])
    assert summary['acc'] == 100.0
    assert (summary['hits'], summary['count']) == (3, 3)
    assert summary['per_class']['dog']['per_part'][1]['count'] == 0
    assert np.isnan(summary['per_class']['dog']['per_part'][1]['acc'])


def test_permuted_features_miss_every_part():
    frac_s, cam, frac_t = pair_inputs()
    feat_t = one_hot_features(TARGET)
    # t's part 0 and part 1 of class 1 swap vectors; class 2's part 0 gets
    # the background's: every peak lands off its part
    feat_t = feat_t[[1, 0, 7, 3, 4, 5, 6, 2]]
    hits, counts = correspondence_hits(one_hot_features(SOURCE), cam, frac_s,
                                       feat_t, frac_t, 0.3)
    assert counts.sum() == 3 and hits.sum() == 0
    assert correspondence_summary(hits, counts)['acc'] == 0.0


def test_mixed_case_two_of_three():
    source = [[(1, 0), (1, 0), (1, 0)]]
    target = [[None, (1, 0), ('b', 1)]]
    frac_s, cam, frac_t = pair_inputs(source, target)
    feat_s = torch.tensor([[[1., 1., 0.]], [[0., 0., 1.]]])  # (2, 1, 3)
    feat_t = torch.tensor([[[0., 1., 0.]], [[0., 0., 1.]]])
    hits, counts = correspondence_hits(feat_s, cam, frac_s, feat_t, frac_t)
    assert counts.tolist() == [[3, 0], [0, 0]]
    assert hits.tolist() == [[2, 0], [0, 0]]
    summary = correspondence_summary(hits, counts)
    assert summary['acc'] == pytest.approx(200 / 3)
    assert round(summary['acc'], 2) == 66.67
    assert list(summary['per_class']) == ['1']  # classes with references
    cat = summary['per_class']['1']
    assert (cat['hits'], cat['count']) == (2, 3)
    assert cat['per_part'][0] == dict(acc=pytest.approx(200 / 3), hits=2,
                                      count=3)
    assert cat['per_part'][1]['count'] == 0


def test_cam_below_beta1_and_off_part_cells_are_excluded():
    source = [[(1, 0), (1, 0), ('b', 1), None]]
    target = [[(1, 0), None, None, None]]
    frac_s, _, frac_t = pair_inputs(source, target)
    cam = torch.tensor([[[0.9, 0.3, 0.9, 0.9]], [[0.9, 0.9, 0.9, 0.9]]])
    feat = torch.ones(1, 1, 4)  # every peak on cell 0: part (1, 0)
    hits, counts = correspondence_hits(feat, cam, frac_s, feat, frac_t, 0.3)
    # cell 1: CAM 0.3 is not > beta1; cells 2-3 are body / background; the
    # CAM of class 2 does not matter for class 1's part
    assert counts.tolist() == [[1, 0], [0, 0]]
    assert hits.tolist() == [[1, 0], [0, 0]]
    assert reference_mask(cam, frac_s, 0.3)[0, 0, 0].tolist() == \
        [True, False, False, False]


def test_part_not_visible_in_target_is_not_counted():
    source = [[(1, 0), (1, 1)]]
    target = [[(1, 1), ('b', 1)]]  # part 0 of class 1 occluded in t
    frac_s, cam, frac_t = pair_inputs(source, target)
    feat = torch.ones(1, 1, 2)
    hits, counts = correspondence_hits(feat, cam, frac_s, feat, frac_t)
    assert counts.tolist() == [[0, 1], [0, 0]]
    assert hits.tolist() == [[0, 1], [0, 0]]
    # nothing visible at all: zeros, no product needed
    frac_none = part_cells(*part_map([[None, ('b', 2)]]), C, P, stride=1)
    hits, counts = correspondence_hits(feat, cam, frac_s, feat, frac_none)
    assert counts.sum() == 0 and hits.sum() == 0
    assert np.isnan(correspondence_summary(hits, counts)['acc'])


def test_grid_rule_on_a_map_not_a_multiple_of_the_stride():
    # 6 x 7 pixels, stride 4 -> zero-padded to 8 x 8 -> 2 x 2 cells of 16
    class_id = np.zeros((6, 7), np.int64)
    role = np.full((6, 7), -1, np.int64)
    class_id[0:3, 0:2], role[0:3, 0:2] = 2, 2  # class 2 part 1: 6 px, cell 0
    class_id[3:6, 4:7], role[3:6, 4:7] = 1, 1  # class 1 part 0: 9 px
    class_id[5, 0:4], role[5, 0:4] = 1, 0  # a body row: in no channel
    frac = part_cells(class_id, role, C, P, stride=4)
    assert frac.shape == (C, P, 2, 2) and frac.dtype == torch.float32
    expected = torch.zeros(C, P, 2, 2)
    expected[1, 1, 0, 0] = 6 / 16
    # class 1 part 0: rows 3-5 x cols 4-6: row 3 in cell row 0 (3 px), rows
    # 4-5 in cell row 1 (6 px); padding counts as zeros
    expected[0, 0, 0, 1] = 3 / 16
    expected[0, 0, 1, 1] = 6 / 16
    torch.testing.assert_close(frac, expected)
    # a CAM on the same grid: the mean over the padded 4 x 4 block
    cam = torch.arange(42, dtype=torch.float32).view(1, 6, 7)
    pooled = cells_to_grid(cam, 4)
    assert pooled.shape == (1, 2, 2)
    assert pooled[0, 1, 1] == pytest.approx(
        float(cam[0, 4:6, 4:7].sum()) / 16)
    assert pooled[0, 0, 0] == pytest.approx(float(cam[0, 0:4, 0:4].mean()))


def test_source_fraction_threshold_and_target_touch():
    # stride 2: source cell 0 holds 2 of 4 pixels of part (1, 0) (0.5:
    # taken), cell 1 one pixel (0.25: not taken); the target's part touches
    # its cell 1 with a single pixel (fraction 0.25 > 0: a hit there)
    class_s = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
    role_s = np.array([[1, 1, 1, -1], [-1, -1, -1, -1]])
    class_t = np.array([[0, 0, 0, 1], [0, 0, 0, 0]])
    role_t = np.array([[-1, -1, -1, 1], [-1, -1, -1, -1]])
    frac_s = part_cells(class_s, role_s, C, P, stride=2)
    frac_t = part_cells(class_t, role_t, C, P, stride=2)
    assert frac_s[0, 0].flatten().tolist() == [0.5, 0.25]
    assert frac_t[0, 0].flatten().tolist() == [0.0, 0.25]
    cam = torch.ones(C, 1, 2)
    feat_s = torch.ones(1, 1, 2)
    feat_t = torch.tensor([[[0.0, 1.0]]])
    hits, counts = correspondence_hits(feat_s, cam, frac_s, feat_t, frac_t)
    assert counts[0, 0] == 1 and hits[0, 0] == 1
    hits, _ = correspondence_hits(feat_s, cam, frac_s, -feat_t, frac_t)
    assert hits[0, 0] == 0  # the peak is then cell 0, off the part


def test_peak_is_the_argmax_of_wf():
    gen = torch.Generator().manual_seed(0)
    vectors = torch.randn(7, 5, generator=gen)
    feat = torch.randn(5, 3, 4, generator=gen)
    feat[:, 0, 0] = -10 * vectors[0]  # a row with a negative maximum too
    wf = similarity_maps(vectors, feat, alpha=20.0)  # (7, 12)
    assert peak_cells(vectors, feat).tolist() == wf.argmax(1).tolist()
    # fp16 inputs: the product is still fp32
    assert peak_cells(vectors.half(), feat.half()).dtype == torch.long


def random_pair(seed, h=5, w=6, dim=4):
    """A random pair at stride 1: t's class and role maps, s's and t's part
    fractions, s's CAM and both feature maps."""
    gen = torch.Generator().manual_seed(seed)
    maps = []
    for _ in range(2):  # s, then t
        class_id = torch.randint(0, C + 1, (h, w), generator=gen)
        role = torch.where(class_id > 0, torch.randint(0, P + 1, (h, w),
                                                       generator=gen), -1)
        maps.append((class_id, role))
    frac_s, frac_t = (part_cells(*m, C, P, stride=1) for m in maps)
    cam = torch.rand(C, h, w, generator=gen)
    feat_s = torch.randn(dim, h, w, generator=gen)
    feat_t = torch.randn(dim, h, w, generator=gen)
    return maps[1], frac_s, frac_t, cam, feat_s, feat_t


def test_batched_over_positions_matches_a_loop():
    _, frac_s, frac_t, cam, feat_s, feat_t = random_pair(1)
    h, w = cam.shape[1:]
    hits, counts = correspondence_hits(feat_s, cam, frac_s, feat_t, frac_t)
    exp_hits, exp_counts = torch.zeros(C, P), torch.zeros(C, P)
    for c in range(C):
        for k in range(P):
            if not (frac_t[c, k] > 0).any():
                continue
            for i in range(h):
                for j in range(w):
                    if frac_s[c, k, i, j] >= 0.5 and cam[c, i, j] > 0.3:
                        sim = (feat_s[:, i, j, None, None] * feat_t).sum(0)
                        peak = int(sim.flatten().argmax())
                        exp_counts[c, k] += 1
                        exp_hits[c, k] += float(
                            frac_t[c, k].flatten()[peak] > 0)
    assert counts.tolist() == exp_counts.long().tolist()
    assert hits.tolist() == exp_hits.long().tolist()
    assert counts.sum() > 0


def test_bad_inputs_are_named():
    frac_s, cam, frac_t = pair_inputs()
    feat = one_hot_features(SOURCE)
    with pytest.raises(ValueError, match='same D'):
        correspondence_hits(feat, cam, frac_s, feat[:3], frac_t)
    with pytest.raises(ValueError, match="source's grid"):
        correspondence_hits(feat, cam[:, :1], frac_s, feat, frac_t)
    with pytest.raises(ValueError, match=r'roles must lie in \[-1, 2\]'):
        part_cells(np.ones((2, 2)), np.full((2, 2), 3), C, P, 1)
    with pytest.raises(ValueError, match=r'class ids must lie in \[0, 2\]'):
        part_cells(np.full((2, 2), 3), np.zeros((2, 2)), C, P, 1)
    with pytest.raises(ValueError, match='hits <= counts'):
        correspondence_summary(torch.ones(2, 2), torch.zeros(2, 2))


def test_class_cells_fractions():
    class_id = np.array([[0, 1, 1, 2], [0, 0, 2, 2]])
    frac = class_cells(class_id, num_classes=3, stride=2)  # (3, 1, 2)
    assert frac.shape == (3, 1, 2)
    assert frac[:, 0, 0].tolist() == [0.25, 0.0, 0.0]
    assert frac[:, 0, 1].tolist() == [0.25, 0.75, 0.0]


def test_object_restricted_peak_ignores_the_background():
    """Every reference's unrestricted peak is on t's background (a vector
    shared by all source cells, large there); kept inside the object each
    finds its part. The chance is the share of the object's cells on the
    part: class 1's object in t has 3 cells, one on each part."""
    frac_s, cam, frac_t = pair_inputs()
    class_t = class_cells(part_map(TARGET)[0], C, stride=1)
    feat_s = one_hot_features(SOURCE)
    feat_s[7] = 1  # every source vector has the background's direction
    feat_t = one_hot_features(TARGET)
    feat_t[7] *= 5
    hits, counts = correspondence_hits(feat_s, cam, frac_s, feat_t, frac_t)
    assert counts.sum() == 3 and hits.sum() == 0
    hits, counts_obj, chance, other = object_correspondence_hits(
        feat_s, cam, frac_s, feat_t, frac_t, class_t)
    assert counts_obj.tolist() == counts.tolist()
    assert hits.tolist() == counts.tolist() and other.sum() == 0
    # class 1: 3 object cells, 1 on each part; class 2: 2 cells, 1 on part 0
    np.testing.assert_allclose(chance, [[1 / 3, 1 / 3], [1 / 2, 0]],
                               rtol=1e-6)
    # swapping class 1's parts in t: both of its references miss
    feat_t = feat_t[[1, 0, 2, 3, 4, 5, 6, 7]]
    hits, _, _, other = object_correspondence_hits(feat_s, cam, frac_s,
                                                   feat_t, frac_t, class_t)
    assert hits.tolist() == [[0, 0], [1, 0]]
    assert other.tolist() == [[1, 1], [0, 0]]  # each found the other part


def test_object_restricted_hits_match_a_loop():
    (class_t, role_t), frac_s, frac_t, cam, feat_s, feat_t = random_pair(
        2, h=8, w=9)
    h, w = cam.shape[1:]
    objects_t = class_cells(class_t, C, stride=1)
    hits, counts, chance, other = object_correspondence_hits(
        feat_s, cam, frac_s, feat_t, frac_t, objects_t)
    exp_hits, exp_counts = torch.zeros(C, P), torch.zeros(C, P)
    exp_chance, exp_other = torch.zeros(C, P), torch.zeros(C, P)
    for c in range(C):
        inside = [(i, j) for i in range(h) for j in range(w)
                  if class_t[i, j] == c + 1]
        for k in range(P):
            if not (frac_t[c, k] > 0).any():
                continue
            on_part = sum(int(role_t[i, j] == k + 1) for i, j in inside)
            for i in range(h):
                for j in range(w):
                    if frac_s[c, k, i, j] >= 0.5 and cam[c, i, j] > 0.3:
                        best = max(inside, key=lambda cell: float(
                            feat_s[:, i, j] @ feat_t[:, cell[0], cell[1]]))
                        exp_counts[c, k] += 1
                        exp_hits[c, k] += float(role_t[best] == k + 1)
                        exp_other[c, k] += float(role_t[best] not in (0,
                                                                      k + 1))
                        exp_chance[c, k] += on_part / len(inside)
    assert counts.tolist() == exp_counts.long().tolist()
    assert hits.tolist() == exp_hits.long().tolist()
    np.testing.assert_allclose(chance, exp_chance, rtol=1e-6)
    assert other.tolist() == exp_other.long().tolist() and other.sum() > 0
    assert counts.sum() > 0 and 0 < hits.sum() < counts.sum()
    with pytest.raises(ValueError, match=r"class_frac_t must be \(C, h, w\)"):
        object_correspondence_hits(feat_s, cam, frac_s, feat_t, frac_t,
                                   objects_t[:1])


def class_features(cells, background=0.):
    """(3, h, w): a cell of class c gets e_c (bodies and parts alike), the
    background ``background * (e_1 + e_2)``."""
    feat = torch.zeros(3, len(cells), len(cells[0]))
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            if cell is None:
                feat[1:, i, j] = background
            else:
                feat[cell[1] if cell[0] == 'b' else cell[0], i, j] = 1
    return feat


def test_class_separation_known_cases():
    """References (1, 0), (1, 1) and (2, 0); t holds both classes. With a
    class code every peak kept in t's objects finds its class, though the
    background (5 (e_1 + e_2)) would win unrestricted; with the codes
    swapped in t none does. Chance: t has 5 object cells, 3 of class 1."""
    frac_s, cam, frac_t = pair_inputs()
    class_t = class_cells(part_map(TARGET)[0], C, stride=1)
    feat_s = class_features(SOURCE)
    feat_t = class_features(TARGET, background=5.)
    hits, counts, chance = class_separation_hits(feat_s, cam, frac_s,
                                                 feat_t, frac_t, class_t)
    assert counts.tolist() == [2, 1] and hits.tolist() == [2, 1]
    np.testing.assert_allclose(chance, [2 * 3 / 5, 1 * 2 / 5], rtol=1e-6)
    hits, counts, _ = class_separation_hits(
        feat_s, cam, frac_s, feat_t[[0, 2, 1]], frac_t, class_t)
    assert counts.tolist() == [2, 1] and hits.tolist() == [0, 0]


def test_class_separation_needs_another_class_in_t():
    """t holds class 1 only: class 1's references do not count (one
    possible answer), and class 2's are not visible in t."""
    target = [[None, ('b', 1), (1, 1)], [None, (1, 0), ('b', 1)]]
    frac_s, cam, frac_t = pair_inputs(target=target)
    class_t = class_cells(part_map(target)[0], C, stride=1)
    hits, counts, chance = class_separation_hits(
        class_features(SOURCE), cam, frac_s, class_features(target), frac_t,
        class_t)
    assert counts.tolist() == [0, 0] and hits.tolist() == [0, 0]
    assert chance.tolist() == [0., 0.]


def test_class_separation_matches_a_loop():
    for seed in range(3):
        (class_t, role_t), frac_s, frac_t, cam, feat_s, feat_t = \
            random_pair(seed, h=7, w=8)
        h, w = cam.shape[1:]
        hits, counts, chance = class_separation_hits(
            feat_s, cam, frac_s, feat_t, frac_t,
            class_cells(class_t, C, stride=1))
        objects = [(i, j) for i in range(h) for j in range(w)
                   if class_t[i, j] > 0]
        exp = torch.zeros(3, C)  # hits, counts, chance
        for c in range(C):
            others = any(int(class_t[i, j]) not in (0, c + 1)
                         for i, j in objects)
            own = sum(int(class_t[i, j]) == c + 1 for i, j in objects)
            for i in range(h):
                for j in range(w):
                    is_ref = any(
                        frac_s[c, k, i, j] >= 0.5 and cam[c, i, j] > 0.3
                        and bool((frac_t[c, k] > 0).any()) for k in range(P))
                    if not (is_ref and others):
                        continue
                    best = max(objects, key=lambda cell: float(
                        feat_s[:, i, j] @ feat_t[:, cell[0], cell[1]]))
                    exp[0, c] += float(class_t[best] == c + 1)
                    exp[1, c] += 1
                    exp[2, c] += own / len(objects)
        assert hits.tolist() == exp[0].long().tolist()
        assert counts.tolist() == exp[1].long().tolist()
        np.testing.assert_allclose(chance, exp[2], rtol=1e-6)
    assert counts.sum() > 0
    with pytest.raises(ValueError, match=r"class_frac_t must be \(C, h, w\)"):
        class_separation_hits(feat_s, cam, frac_s, feat_t, frac_t,
                              class_cells(class_t, C, stride=1)[:1])
