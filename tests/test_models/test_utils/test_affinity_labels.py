import numpy as np
import pytest
import torch

from mmcyc.models.utils.affinity_labels import (affinity_pair_labels,
                                                background_scores,
                                                cam_to_affinity_label,
                                                confident_label_map,
                                                pool_scores)
from mmcyc.models.utils.random_walk import radius_offsets


def psa_extract_affinity_label_in_radius(label, radius=5):
    """Transcription of psa ``voc12/data.py`` ``ExtractAffinityLabelInRadius``
    (for a label map of any size, not only square crops)."""
    search_dist = [(0, x) for x in range(1, radius)]
    for y in range(1, radius):
        for x in range(-radius + 1, radius):
            if x * x + y * y < radius * radius:
                search_dist.append((y, x))
    floor = radius - 1
    crop_height = label.shape[0] - floor
    crop_width = label.shape[1] - 2 * floor
    labels_from = label[:-floor, floor:-floor].reshape(-1)
    labels_to_list, valid_list = [], []
    for dy, dx in search_dist:
        labels_to = label[dy:dy + crop_height,
                          floor + dx:floor + dx + crop_width].reshape(-1)
        labels_to_list.append(labels_to)
        valid_list.append(
            np.logical_and(np.less(labels_to, 255), np.less(labels_from,
                                                            255)))
    bc_from = labels_from[None]
    to = np.stack(labels_to_list)
    valid = np.stack(valid_list)
    pos = np.equal(bc_from, to)
    bg = np.logical_and(pos, np.equal(bc_from, 0))
    fg = np.logical_and(np.logical_and(pos, np.not_equal(bc_from, 0)), valid)
    neg = np.logical_and(np.logical_not(pos), valid)
    return bg.astype(np.float32), fg.astype(np.float32), neg.astype(
        np.float32)


def test_background_scores_hand_values():
    cams = torch.tensor([[[0.5, 0.0]], [[0.2, 0.9]]])  # (2, 1, 2)
    scores = background_scores(cams, alpha=2)
    assert scores.shape == (3, 1, 2)
    assert torch.allclose(scores[0], torch.tensor([[0.25, 0.01]]))
    assert torch.equal(scores[1:], cams)
    assert torch.equal(
        background_scores(torch.zeros(0, 2, 3), 4), torch.ones(1, 2, 3))


def test_pool_scores_zero_pads_partial_blocks():
    scores = torch.arange(100.).reshape(1, 10, 10)
    pooled = pool_scores(scores, 8)
    assert pooled.shape == (1, 2, 2)
    assert pooled[0, 0, 0] == scores[0, :8, :8].mean()
    # Partial block: the 2x2 corner summed, divided by 64 as block_reduce.
    assert torch.isclose(pooled[0, 1, 1], scores[0, 8:, 8:].sum() / 64)
    assert torch.isclose(pooled[0, 0, 1], scores[0, :8, 8:].sum() / 64)


def test_confident_labels_on_hand_made_cam():
    # One class map; alpha 4 and 32 at stride 1:
    #   0.9  -> low bg 1e-4,  class wins           -> class
    #   0.3  -> low bg 0.240 < 0.3                 -> class
    #   0.2  -> low bg 0.410: bg; high bg 8e-4     -> ignored
    #   0.1  -> low bg 0.656: bg; high bg 0.034    -> ignored
    #   0.01 -> low bg 0.961; high bg 0.725 > 0.01 -> background
    cams = torch.tensor([[[0.9, 0.3, 0.2, 0.1, 0.01]]])
    label = cam_to_affinity_label(cams, stride=1)
    assert label.tolist() == [[1, 1, 255, 255, 0]]
    assert label.dtype == torch.int64
    # Class indices become VOC mask values (index + 1).
    label = cam_to_affinity_label(cams, labels=torch.tensor([6]), stride=1)
    assert label.tolist() == [[7, 7, 255, 255, 0]]


def test_confident_labels_two_classes():
    cams = torch.tensor([
        [[0.6, 0.8, 0.0]],  # class 4
        [[0.7, 0.1, 0.0]],  # class 11
    ])
    label = cam_to_affinity_label(cams, labels=[4, 11], stride=1)
    assert label.tolist() == [[12, 5, 0]]


def test_confident_labels_pool_scores_before_argmax():
    # A 2x2 block at stride 2: three positions of weak class evidence (0.3,
    # class) and one of none (background). Pooled: cam 0.225, low bg
    # (3 * 0.2401 + 1) / 4 = 0.430 -> bg; high bg (3 * 1.1e-5 + 1) / 4 =
    # 0.25 > 0.225 -> background. A vote over the stride-1 labels would
    # have said class.
    cams = torch.tensor([[[0.3, 0.3], [0.3, 0.0]]])
    assert cam_to_affinity_label(cams, stride=1).tolist() == [[1, 1], [1, 0]]
    assert cam_to_affinity_label(cams, stride=2).tolist() == [[0]]


def test_no_score_region_is_ignored():
    # Crop padding: every score zero, as psa's zero-filled RandomCrop.
    low = background_scores(torch.full((1, 4, 4), 0.01), 4)
    high = background_scores(torch.full((1, 4, 4), 0.01), 32)
    low[:, :, 2:] = 0
    high[:, :, 2:] = 0
    label = confident_label_map(low, high, stride=2)
    assert label.tolist() == [[0, 255], [0, 255]]


def test_crf_callable_refines_both_stacks():
    calls = []

    def crf(image, scores):
        calls.append((tuple(image.shape), tuple(scores.shape)))
        out = torch.zeros_like(scores)
        out[1] = 1  # the "CRF" says: class everywhere
        return out

    cams = torch.full((1, 3, 3), 0.01)
    image = torch.zeros(3, 3, 3, dtype=torch.uint8)
    assert cam_to_affinity_label(cams, stride=1).unique().tolist() == [0]
    label = cam_to_affinity_label(cams, crf=crf, image=image, stride=1)
    assert label.unique().tolist() == [1]
    assert calls == [((3, 3, 3), (2, 3, 3))] * 2
    with pytest.raises(ValueError, match='image'):
        cam_to_affinity_label(cams, crf=crf)
    with pytest.raises(ValueError, match='shape'):
        background_scores(cams, 4, crf=lambda i, s: s[:1], image=image)


def test_pair_labels_match_psa_transcription():
    gen = torch.Generator().manual_seed(0)
    label = torch.randint(0, 3, (11, 13), generator=gen)
    label[torch.rand(11, 13, generator=gen) < 0.25] = 255
    bg, fg, neg = affinity_pair_labels(label, radius_offsets(5))
    assert bg.shape == fg.shape == neg.shape == (34, 7, 5)
    expected = psa_extract_affinity_label_in_radius(label.numpy())
    for ours, theirs in zip((bg, fg, neg), expected):
        assert np.array_equal(ours.reshape(34, -1).numpy(), theirs)
    # Every labelled pair is exactly one kind; ignored pairs none.
    total = bg + fg + neg
    assert total.max() == 1
    assert bg.sum() > 0 and fg.sum() > 0 and neg.sum() > 0


def test_pair_labels_by_hand_and_batched():
    offsets = [(0, 1), (1, 0)]
    label = torch.tensor([[0, 0, 3], [0, 3, 255]])
    bg, fg, neg = affinity_pair_labels(label, offsets)
    # From-block rows 0, columns 0-1 (right margin 1, bottom margin 1).
    # (0,0)-(0,1): 0-0 bg; (0,1)-(0,2): 0-3 neg; (0,0)-(1,0): 0-0 bg;
    # (0,1)-(1,1): 0-3 neg.
    assert bg.tolist() == [[[1., 0.]], [[1., 0.]]]
    assert fg.sum() == 0
    assert neg.tolist() == [[[0., 1.]], [[0., 1.]]]
    label = torch.tensor([[3, 3, 255], [3, 0, 0]])
    bg, fg, neg = affinity_pair_labels(torch.stack([label, label]), offsets)
    assert bg.shape == (2, 2, 1, 2)
    # (0,0)-(0,1): 3-3 fg; (0,1)-(0,2): ignored; (0,0)-(1,0): 3-3 fg;
    # (0,1)-(1,1): 3-0 neg.
    assert fg[0].tolist() == [[[1., 0.]], [[1., 0.]]]
    assert neg[1].tolist() == [[[0., 0.]], [[0., 1.]]]
    assert bg.sum() == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match='alpha'):
        background_scores(torch.rand(1, 2, 2), 0)
    with pytest.raises(ValueError, match='alpha_low'):
        cam_to_affinity_label(torch.rand(1, 2, 2), alpha_low=32,
                              alpha_high=4)
    with pytest.raises(ValueError, match='cams'):
        background_scores(torch.rand(2, 2), 4)
    with pytest.raises(ValueError, match='labels'):
        cam_to_affinity_label(torch.rand(2, 2, 2), labels=[1])
    with pytest.raises(ValueError, match='labels'):
        cam_to_affinity_label(torch.rand(1, 2, 2), labels=[254])
    with pytest.raises(ValueError, match='scores_low'):
        confident_label_map(torch.rand(2, 2, 2), torch.rand(3, 2, 2))
