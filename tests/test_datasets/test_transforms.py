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

from mmcyc.datasets import (LoadCAMFromFile, LoadCheckedAnnotations,
                            LoadCheckedImageFromFile, PackImageLabelInputs,
                            VOCImageLabelDataset, make_synthvoc)
from mmcyc.utils import save_cam


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
        assert type(TRANSFORMS.build(
            dict(type='LoadCAMFromFile', cam_dir='cams'))) is LoadCAMFromFile


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


# --------------------------------------------------------------------- #
# LoadCAMFromFile: stored CAMs that follow the image
CAM_SIZE = (30, 44)  # (H, W)


@pytest.fixture
def cam_image(tmp_path):
    """A PNG whose pixels encode their (row, col) and its CAM file."""
    height, width = CAM_SIZE
    rows, cols = np.mgrid[:height, :width]
    img = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)
    img_path = str(tmp_path / 'img_0001.png')
    Image.fromarray(img).save(img_path)  # lossless: exact coordinates
    rng = np.random.default_rng(0)
    cams = rng.random((2, height, width)).astype(np.float32)
    cam_dir = tmp_path / 'cams'
    save_cam(str(cam_dir / 'img_0001.npz'), cams, np.array([2, 7]))
    dense = np.zeros((height, width, 20), np.float32)
    dense[..., 2], dense[..., 7] = cams[0], cams[1]
    return dict(img_path=img_path, img_label=np.eye(20, dtype=np.float32)[2]
                + np.eye(20, dtype=np.float32)[7]), str(cam_dir), dense


def load_with_cam(cam_image, *transforms):
    info, cam_dir, _ = cam_image
    pipeline = Compose([LoadCheckedImageFromFile(),
                        LoadCAMFromFile(cam_dir)] + list(transforms))
    return pipeline(dict(info))


def offset_of(results):
    """(row, col) of the crop's top-left pixel in the original image."""
    img = results['img']  # BGR: channel 2 is the row, 1 the column
    return int(img[0, 0, 2]), int(img[0, 0, 1])


def test_cam_loaded_as_a_dense_seg_field(cam_image):
    _, _, dense = cam_image
    out = load_with_cam(cam_image)
    cam = out['gt_cam']
    assert cam.shape == (*CAM_SIZE, 20) and cam.dtype == np.float32
    np.testing.assert_allclose(cam, dense, atol=1e-3)  # stored as fp16
    assert cam[..., [c for c in range(20) if c not in (2, 7)]].max() == 0
    assert out['seg_fields'] == ['gt_cam']


def test_cam_follows_crop_and_flip_exactly(cam_image):
    _, _, dense = cam_image
    stored = load_with_cam(cam_image)['gt_cam']
    flipped = load_with_cam(
        cam_image, TRANSFORMS.build(dict(type='RandomFlip', prob=1.0)))
    np.testing.assert_array_equal(flipped['gt_cam'], stored[:, ::-1])
    flips, offsets = set(), set()
    for seed in range(4):
        np.random.seed(seed)
        out = load_with_cam(
            cam_image,
            TRANSFORMS.build(dict(type='RandomCrop', crop_size=(16, 20))),
            TRANSFORMS.build(dict(type='RandomFlip', prob=0.5)))
        row, col = offset_of(out) if not out['flip'] else \
            (offset_of(out)[0], int(out['img'][0, -1, 1]))
        expected = stored[row:row + 16, col:col + 20]
        if out['flip']:
            expected = expected[:, ::-1]
        assert out['gt_cam'].shape == (16, 20, 20)
        np.testing.assert_array_equal(out['gt_cam'], expected)
        flips.add(out['flip'])
        offsets.add((row, col))
    assert flips == {True, False} and len(offsets) > 1


@pytest.mark.parametrize('ratio', [0.5, 1.5])
def test_cam_follows_random_resize_nearest(cam_image, ratio):
    stored = load_with_cam(cam_image)['gt_cam']
    resize = dict(type='RandomResize', scale=(44, 30),
                  ratio_range=(ratio, ratio), keep_ratio=True)
    # the configs' default_scope = 'mmseg' makes RandomResize build mmseg's
    # Resize, which resizes every seg field
    with DefaultScope.overwrite_default_scope('mmseg'):
        out = load_with_cam(cam_image, TRANSFORMS.build(resize))
    cam = out['gt_cam']
    assert cam.dtype == np.float32 and cam.shape[2] == 20
    assert cam.shape[:2] == out['img'].shape[:2] != CAM_SIZE
    # nearest interpolation: every resized pixel is a stored pixel
    stored_pixels = {tuple(p) for p in stored.reshape(-1, 20)}
    assert all(tuple(p) in stored_pixels for p in cam.reshape(-1, 20))


def test_pack_gt_cam(cam_image):
    out = load_with_cam(cam_image, PackImageLabelInputs())
    sample = out['data_samples']
    stored = load_with_cam(cam_image)['gt_cam']
    assert sample.gt_cam.data.shape == (20, *CAM_SIZE)
    assert sample.gt_cam.data.dtype == torch.float32
    assert torch.equal(sample.gt_cam.data,
                       torch.from_numpy(stored).permute(2, 0, 1))
    no_cam = Compose([LoadCheckedImageFromFile(), PackImageLabelInputs()])
    assert 'gt_cam' not in no_cam(dict(cam_image[0]))['data_samples']
    # mmcv's own Resize moves gt_seg_map only: caught when packing
    mmcv_resize = TRANSFORMS.build(
        dict(type='RandomResize', scale=(44, 30), ratio_range=(2.0, 2.0),
             keep_ratio=True, resize_type='mmcv.Resize'))
    with pytest.raises(ValueError, match=r'shape \(30, 44, 20\).*'
                       r'image size \(60, 88\)'):
        load_with_cam(cam_image, mmcv_resize, PackImageLabelInputs())


def test_cam_file_errors(cam_image, tmp_path):
    info, cam_dir, _ = cam_image
    missing = dict(info, img_path=str(tmp_path / 'other.jpg'))
    with pytest.raises(FileNotFoundError,
                       match=re.escape(osp.join(cam_dir, 'other.npz'))):
        LoadCAMFromFile(cam_dir)(missing)
    save_cam(osp.join(cam_dir, 'img_0001.npz'), np.zeros((1, 30, 40)),
             np.array([3]))
    with pytest.raises(ValueError, match=r'img_0001\.npz has size \(30, '
                       r'40\) but image .* has \(30, 44\)'):
        load_with_cam(cam_image)
    save_cam(osp.join(cam_dir, 'img_0001.npz'), np.zeros((1, 30, 44)),
             np.array([25]))
    with pytest.raises(ValueError, match=r'img_0001\.npz: CAM labels \[25\]'):
        load_with_cam(cam_image)
    with pytest.raises(ValueError, match='num_classes'):
        LoadCAMFromFile(cam_dir, num_classes=0)
