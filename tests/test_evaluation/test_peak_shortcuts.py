import pytest
import torch

from mmcyc.evaluation.functional import peak_shortcut_counts


def position_code(height, width, extra=0.0):
    """One-hot code of each cell's position, plus ``extra`` on a shared
    channel: the features of 'absolute position' whatever the image."""
    code = torch.eye(height * width).view(height * width, height, width)
    shared = torch.full((1, height, width), extra)
    return torch.cat([code, shared])  # (h * w + 1, h, w)


def test_position_code_peaks_at_the_own_cell():
    feat = position_code(3, 4)
    objects = torch.zeros(3, 4)
    objects[1:, 1:3] = 1.0  # a 2 x 2 object; 8 background cells
    refs = torch.tensor([0, 5, 6, 11])  # (0,0) bg, (1,1) obj, (1,2), (2,3)
    for cosine in (False, True):
        same, background, count = peak_shortcut_counts(
            feat, refs, feat, objects, cosine).tolist()
        assert (same, count) == (4, 4)
        assert background == 2  # cells 0 and 11 are background


def test_a_shared_component_hides_the_code_from_the_raw_products_only():
    """A large shared channel and one cell of t with a larger norm (a hub):
    every raw product peaks at the hub, every cosine at the own cell."""
    feat_s = position_code(3, 3, extra=10.0)
    feat_t = position_code(3, 3, extra=10.0)
    feat_t[-1, 0, 0] = 12.0  # the hub: cell (0, 0), on the background
    objects = torch.ones(3, 3)
    objects[0, 0] = 0.4  # mostly background
    refs = torch.arange(1, 9)  # every cell but the hub's
    same, background, count = peak_shortcut_counts(feat_s, refs, feat_t,
                                                   objects).tolist()
    assert (same, background, count) == (0, 8, 8)
    same, background, count = peak_shortcut_counts(
        feat_s, refs, feat_t, objects, cosine=True).tolist()
    assert (same, background, count) == (8, 0, 8)


def test_grids_of_different_sizes_compare_positions():
    """Cell (i, j) of a 2 x 3 source is cell (i, j) of a 3 x 4 target,
    whatever the flat indices."""
    feat_s = torch.zeros(2, 2, 3)
    feat_t = torch.zeros(2, 3, 4)
    feat_s[0, 1, 2] = 1.0  # source cell (1, 2): flat 5
    feat_t[0, 1, 2] = 1.0  # target cell (1, 2): flat 6
    feat_s[1, 0, 1] = 1.0  # source cell (0, 1): flat 1
    feat_t[1, 2, 0] = 1.0  # target cell (2, 0): not its position
    same, background, count = peak_shortcut_counts(
        feat_s, torch.tensor([5, 1]), feat_t, torch.ones(3, 4)).tolist()
    assert (same, background, count) == (1, 0, 2)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match='same D'):
        peak_shortcut_counts(torch.zeros(2, 3, 3), torch.tensor([0]),
                             torch.zeros(3, 3, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"target's grid \(3, 3\)"):
        peak_shortcut_counts(torch.zeros(2, 3, 3), torch.tensor([0]),
                             torch.zeros(2, 3, 3), torch.zeros(2, 3))
