"""CAM recall per SynthVOC region kind against hand counts."""
import math

import numpy as np
import pytest
import torch

from mmcyc.apis import evaluate_part_recall
from mmcyc.datasets.synthvoc import PART_CODE, SALIENT_FLAG
from mmcyc.evaluation.functional import part_recall_counts, recall_percent
from mmcyc.utils import CAMStore


def code(class_id, role, salient=False):
    return PART_CODE * class_id + role + SALIENT_FLAG * salient


def hand_case():
    """A 2x4 image: class 3 (channel 2) with a salient part 0, a weak part 1
    and body; one class-5 body pixel; background."""
    part_map = np.array(
        [[code(3, 1, True), code(3, 1, True), code(3, 2), code(3, 2)],
         [code(3, 0), code(3, 0), code(5, 0), 0]], dtype=np.uint8)
    cam = torch.zeros(20, 2, 4)
    cam[2] = torch.tensor([[0.9, 0.1, 0.25, 0.2], [0.3, 0.19, 0.9, 0.9]])
    cam[4] = torch.tensor([[0.9, 0.9, 0.9, 0.9], [0.9, 0.9, 0.1, 0.9]])
    return cam, part_map


def test_counts_by_hand():
    cam, part_map = hand_case()
    counts = part_recall_counts(cam, part_map, bg_score=0.2)
    # salient: 0.9 found, 0.1 not; weak: 0.25 found, 0.2 not (strictly
    # above); bodies: class 3 at 0.3 found, 0.19 not; the class-5 pixel reads
    # channel 4 (0.1, not found), not channel 2 (0.9)
    assert counts == dict(salient=(1, 2), weak=(1, 2), body=(1, 3))
    percent = recall_percent(dict(counts, empty=(0, 0)))
    assert percent['body'] == pytest.approx(100 / 3)
    assert math.isnan(percent['empty'])


def test_bad_shapes():
    cam, part_map = hand_case()
    with pytest.raises(ValueError, match='size'):
        part_recall_counts(cam[:, :, :3], part_map, 0.2)
    with pytest.raises(ValueError, match='class id 5'):
        part_recall_counts(cam[:4], part_map, 0.2)


def test_over_a_split(tmp_path):
    from PIL import Image
    cam, part_map = hand_case()
    (tmp_path / 'SynthParts').mkdir()
    store = CAMStore(str(tmp_path / 'cams'))
    for name in ('a', 'b'):
        Image.fromarray(part_map).save(tmp_path / 'SynthParts' / f'{name}.png')
        labels = torch.zeros(20)
        labels[[2, 4]] = 1
        store.save(name, cam, labels)
    result = evaluate_part_recall(str(tmp_path), str(tmp_path / 'cams'),
                                  ['a', 'b'])
    assert result['salient'] == pytest.approx(50.0)
    assert result['body'] == pytest.approx(100 / 3)
    assert result['body_pixels'] == 6
    with pytest.raises(FileNotFoundError, match='missing'):
        evaluate_part_recall(str(tmp_path), str(tmp_path / 'cams'),
                             ['missing'])
