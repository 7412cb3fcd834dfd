import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.registry import DefaultScope
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample
from PIL import Image

from mmcyc.datasets import (LoadCheckedAnnotations, LoadCheckedImageFromFile,
                            PackImageLabelInputs, VOCImageLabelDataset,
                            make_synthvoc)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthvoc'))
    make_synthvoc(root, num_train=3, num_val=2, size=(40, 56), seed=2)
    return VOCImageLabelDataset(data_root=root)


def results_of(dataset, index=0):
    """A fresh copy of one data info, as BaseDataset.prepare_data gives it."""
    return dataset.get_data_info(index)


def write_png(path, mask):
    png = Image.fromarray(mask.astype(np.uint8))
    png.putpalette([0, 0, 0] * 256)
    png.save(path)
    return str(path)


def test_registered_in_mmseg():
    with DefaultScope.overwrite_default_scope('mmseg'):
        for cls in (LoadCheckedImageFromFile, LoadCheckedAnnotations,
                    PackImageLabelInputs):
            assert type(TRANSFORMS.build(dict(type=cls.__name__))) is cls


def test_pipeline_packs_image_mask_and_label(dataset):
    pipeline = Compose([
        LoadCheckedImageFromFile(),
        LoadCheckedAnnotations(),
        PackImageLabelInputs()
    ])
    info = results_of(dataset, 1)
    packed = pipeline(info)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.shape == (3, 40, 56) and inputs.dtype == torch.uint8
    with Image.open(info['img_path']) as img:
        on_disk = np.array(img, dtype=int)  # RGB; mmcv gives BGR
    rgb = inputs.permute(1, 2, 0).numpy()[..., ::-1].astype(int)
    assert np.abs(rgb - on_disk).max() <= 2  # JPEG decoders may round apart
    assert isinstance(sample, SegDataSample)
    with Image.open(info['seg_map_path']) as png:
        mask = np.array(png)
    assert sample.gt_sem_seg.data.shape == (1, 40, 56)
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), mask)
    label = sample.gt_img_label
    assert label.dtype == torch.float32 and label.shape == (20, )
    np.testing.assert_array_equal(label.numpy(), info['img_label'])
    classes = np.unique(mask[(mask > 0) & (mask < 255)])
    assert np.flatnonzero(label.numpy()).tolist() == (classes - 1).tolist()
    assert 'img_label' not in sample.metainfo
    assert sample.metainfo['img_path'] == info['img_path']


def test_pack_label_into_metainfo_when_asked(dataset):
    info = LoadCheckedImageFromFile()(results_of(dataset))
    sample = PackImageLabelInputs(
        meta_keys=('img_path', 'img_label'))(info)['data_samples']
    np.testing.assert_array_equal(sample.metainfo['img_label'],
                                  info['img_label'])
    assert torch.equal(sample.gt_img_label,
                       torch.from_numpy(info['img_label']))


def test_pack_errors(dataset):
    info = LoadCheckedImageFromFile()(results_of(dataset))
    del info['img_label']
    with pytest.raises(KeyError, match="no 'img_label'"):
        PackImageLabelInputs()(info)
    info['img_label'] = np.zeros((2, 20))
    with pytest.raises(ValueError, match=r'shape \(2, 20\)'):
        PackImageLabelInputs()(info)


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_image_missing_or_corrupt(tmp_path, backend):
    load = LoadCheckedImageFromFile(imdecode_backend=backend)
    missing = str(tmp_path / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        load(dict(img_path=missing))
    assert LoadCheckedImageFromFile(ignore_empty=True)(
        dict(img_path=missing)) is None
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'\xff\xd8 this is not a JPEG')
    with pytest.raises(
            ValueError,
            match='cannot decode image ' + re.escape(str(corrupt)) +
            ': expected a JPEG/PNG file'):
        load(dict(img_path=str(corrupt)))
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    with pytest.raises(
            ValueError, match='cannot decode image ' + re.escape(str(empty))):
        load(dict(img_path=str(empty)))


def ann_results(path):
    return dict(
        img_path='x.jpg',
        seg_map_path=path,
        reduce_zero_label=False,
        seg_fields=[])


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_mask_missing_or_corrupt(tmp_path, backend):
    load = LoadCheckedAnnotations(imdecode_backend=backend)
    missing = str(tmp_path / 'missing.png')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        load(ann_results(missing))
    corrupt = tmp_path / 'corrupt.png'
    corrupt.write_bytes(b'\x89PNG not really')
    with pytest.raises(
            ValueError,
            match='cannot decode image ' + re.escape(str(corrupt)) +
            ': expected a PNG'):
        load(ann_results(str(corrupt)))
    with pytest.raises(ValueError, match=r'image x\.jpg has no mask'):
        load(ann_results(None))


def test_mask_label_ids(tmp_path):
    mask = np.zeros((6, 7), np.uint8)
    mask[1, 1], mask[2, 2], mask[3, 3] = 20, 255, 21
    mask[4, 4] = 200
    path = write_png(tmp_path / 'bad.png', mask)
    with pytest.raises(
            ValueError, match=re.escape(path) + r' has label ids \[21, 200\]'):
        LoadCheckedAnnotations()(ann_results(path))
    mask[mask > 20] = 255
    path = write_png(tmp_path / 'good.png', mask)
    out = LoadCheckedAnnotations()(ann_results(path))
    np.testing.assert_array_equal(out['gt_seg_map'], mask)
    assert out['seg_fields'] == ['gt_seg_map']
    with pytest.raises(ValueError, match=r'\[20\]: expected 0\.\.19'):
        LoadCheckedAnnotations(num_classes=20)(ann_results(path))
    with pytest.raises(ValueError, match='num_classes'):
        LoadCheckedAnnotations(num_classes=0)
