import os.path as osp
import re

import numpy as np
import pytest
from mmseg.datasets import PascalVOCDataset

from mmcyc.datasets import (VOC_CLASSES, labels_from_mask, load_cls_labels,
                            save_cls_labels, voc_palette)



def test_voc_classes_and_palette_match_mmseg():
    assert ('background', ) + VOC_CLASSES == tuple(
        PascalVOCDataset.METAINFO['classes'])
    palette = voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert palette[:21].tolist() == PascalVOCDataset.METAINFO['palette']
    assert palette[255].tolist() == [224, 224,
                                     192]  # VOC's colour of the ignore border


def test_labels_from_mask():
    mask = np.array([[0, 3, 3], [255, 20, 0]], dtype=np.uint8)
    expected = np.zeros(20, dtype=np.float32)
    expected[[2, 19]] = 1
    label = labels_from_mask(mask)
    assert label.dtype == np.float32 and label.shape == (20, )
    np.testing.assert_array_equal(label, expected)
    assert not labels_from_mask(np.full((4, 4), 255, np.uint8)).any()
    np.testing.assert_array_equal(
        labels_from_mask(np.array([[0, 2]]), num_classes=3), [0, 1, 0])


def test_labels_from_mask_rejects_bad_ids():
    mask = np.array([[0, 21, 254], [1, 255, 0]], dtype=np.uint8)
    with pytest.raises(
            ValueError, match=r'mask a/b\.png has label ids \[21, 254\]'):
        labels_from_mask(mask, source='a/b.png')


def test_save_load_roundtrip(tmp_path):
    labels = {'x1': np.array([1, 0, 1], dtype=np.float64), 'x2': [0, 1, 0]}
    path = str(tmp_path /
               'labels.bin')  # used as given: numpy must not append .npy
    save_cls_labels(path, labels)
    assert osp.isfile(path) and not osp.exists(path + '.npy')
    raw = np.load(path, allow_pickle=True).item()  # AffinityNet's reader
    assert list(raw) == ['x1', 'x2'] and raw['x1'].dtype == np.float32
    loaded = load_cls_labels(path)
    np.testing.assert_array_equal(loaded['x2'], [0, 1, 0])
    assert loaded['x2'].dtype == np.float32


def test_load_errors(tmp_path):
    missing = str(tmp_path / 'nope.npy')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        load_cls_labels(missing)
    not_dict = str(tmp_path / 'arr.npy')
    np.save(not_dict, np.zeros(3))
    with pytest.raises(
            ValueError, match=re.escape(not_dict) + '.*expected a dict'):
        load_cls_labels(not_dict)
    ragged = str(tmp_path / 'ragged.npy')
    np.save(ragged, {'a': np.zeros(20), 'b': np.zeros(19)})
    with pytest.raises(ValueError, match=re.escape(ragged) + ".*'b'"):
        load_cls_labels(ragged)
    garbage = tmp_path / 'garbage.npy'
    garbage.write_bytes(b'not numpy at all')
    with pytest.raises(ValueError, match=re.escape(str(garbage))):
        load_cls_labels(str(garbage))


def test_load_real_voc_cls_labels(voc12_meta):
    real_cls_labels = osp.join(voc12_meta, 'cls_labels.npy')
    labels = load_cls_labels(real_cls_labels)
    raw = np.load(real_cls_labels, allow_pickle=True).item()
    assert len(labels) == len(raw) == 12031
    for name in ('2007_000032', '2011_003276', list(raw)[-1]):
        assert labels[name].dtype == np.float32 and labels[name].shape == (
            20, )
        np.testing.assert_array_equal(labels[name], raw[name])
    # 2007_000032 shows aeroplanes and people (VOC class ids 1 and 15).
    assert np.flatnonzero(labels['2007_000032']).tolist() == [0, 14]
