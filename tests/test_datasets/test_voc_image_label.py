import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS
from PIL import Image

from mmcyc.datasets import (VOCImageLabelDataset, make_synthvoc,
                            read_image_names, save_cls_labels)



@pytest.fixture(scope='module')
def synth_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthvoc'))
    make_synthvoc(root, num_train=12, num_val=6, size=48, seed=1)
    return root


@pytest.fixture
def root_copy(synth_root, tmp_path):
    """A private copy that a test may damage."""
    root = str(tmp_path / 'voc')
    shutil.copytree(synth_root, root)
    return root


def names_of(root, split):
    with open(osp.join(root, 'ImageSets', 'Segmentation',
                       split + '.txt')) as f:
        return f.read().split()


def test_metainfo_matches_mmseg_voc():
    meta = VOCImageLabelDataset.METAINFO
    assert tuple(meta['classes']) == tuple(
        PascalVOCDataset.METAINFO['classes'])
    assert meta['palette'] == PascalVOCDataset.METAINFO['palette']


@pytest.mark.parametrize('split', ['train_aug', 'val'])
def test_labels_from_file_equal_labels_from_masks(synth_root, split):
    kwargs = dict(
        data_root=synth_root, ann_file=f'ImageSets/Segmentation/{split}.txt')
    from_file = VOCImageLabelDataset(**kwargs)
    from_masks = VOCImageLabelDataset(cls_label_file=None, **kwargs)
    names = names_of(synth_root, split)
    assert len(from_file) == len(from_masks) == len(names)
    expected = np.load(
        osp.join(synth_root, 'cls_labels.npy'), allow_pickle=True).item()
    for i, name in enumerate(names):
        a, b = from_file.get_data_info(i), from_masks.get_data_info(i)
        assert a['img_path'] == osp.join(synth_root, 'JPEGImages',
                                         name + '.jpg')
        assert a['seg_map_path'] == osp.join(synth_root,
                                             'SegmentationClassAug',
                                             name + '.png')
        assert a['img_label'].dtype == np.float32 and a['img_label'].shape == (
            20, )
        np.testing.assert_array_equal(a['img_label'], expected[name])
        np.testing.assert_array_equal(b['img_label'], expected[name])
        assert a['seg_fields'] == [] and a['reduce_zero_label'] is False
        assert a['label_map'] is None


def test_affinitynet_ann_lines(synth_root, tmp_path):
    names = names_of(synth_root, 'train')
    ann = tmp_path / 'train_psa.txt'
    ann.write_text(''.join(
        f'/JPEGImages/{n}.jpg /SegmentationClassAug/{n}.png\n'
        for n in names) + '\n')
    assert read_image_names(str(ann)) == names
    dataset = VOCImageLabelDataset(data_root=synth_root, ann_file=str(ann))
    assert [
        osp.basename(dataset.get_data_info(i)['img_path'])
        for i in range(len(names))
    ] == [n + '.jpg' for n in names]


def test_real_voc_metadata(tmp_path, voc12_meta):
    for f in ('train_aug.txt', 'cls_labels.npy'):
        os.symlink(osp.join(voc12_meta, f), tmp_path / f)
    dataset = VOCImageLabelDataset(
        data_root=str(tmp_path),
        ann_file='train_aug.txt',
        require_seg_map=False,
        check_files=False)
    assert len(dataset) == 10582
    raw = np.load(osp.join(voc12_meta, 'cls_labels.npy'), allow_pickle=True).item()
    with open(osp.join(voc12_meta, 'train_aug.txt')) as f:
        lines = f.read().splitlines()
    for i in (0, 1, len(lines) - 1):
        name = osp.basename(lines[i].split()[0])[:-len('.jpg')]
        info = dataset.get_data_info(i)
        assert info['img_path'].endswith(f'JPEGImages/{name}.jpg')
        assert info['seg_map_path'] is None
        np.testing.assert_array_equal(info['img_label'], raw[name])
    assert np.flatnonzero(
        dataset.get_data_info(0)['img_label']).tolist() == [0, 14]


def test_build_from_registry_with_pipeline(synth_root):
    cfg = dict(
        type='VOCImageLabelDataset',
        data_root=synth_root,
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=[
            dict(type='LoadCheckedImageFromFile'),
            dict(type='LoadCheckedAnnotations'),
            dict(type='PackImageLabelInputs')
        ])
    with DefaultScope.overwrite_default_scope(
            'mmseg'):  # as configs set default_scope
        dataset = DATASETS.build(cfg)
        item = dataset[0]
    assert isinstance(dataset, VOCImageLabelDataset)
    assert tuple(item['inputs'].shape) == (3, 48, 48)
    np.testing.assert_array_equal(item['data_samples'].gt_img_label.numpy(),
                                  dataset.get_data_info(0)['img_label'])


def test_missing_ann_file(synth_root):
    with pytest.raises(
            FileNotFoundError, match=r'annotation file .*nope\.txt'):
        VOCImageLabelDataset(data_root=synth_root, ann_file='nope.txt')


def test_missing_image(root_copy):
    name = names_of(root_copy, 'val')[2]
    path = osp.join(root_copy, 'JPEGImages', name + '.jpg')
    os.remove(path)
    kwargs = dict(
        data_root=root_copy, ann_file='ImageSets/Segmentation/val.txt')
    with pytest.raises(FileNotFoundError, match=re.escape(path)):
        VOCImageLabelDataset(**kwargs)
    assert len(VOCImageLabelDataset(check_files=False, **kwargs)) == 6


def test_missing_mask(root_copy):
    name = names_of(root_copy, 'val')[0]
    path = osp.join(root_copy, 'SegmentationClassAug', name + '.png')
    os.remove(path)
    kwargs = dict(
        data_root=root_copy, ann_file='ImageSets/Segmentation/val.txt')
    with pytest.raises(FileNotFoundError, match=re.escape(path)):
        VOCImageLabelDataset(**kwargs)
    dataset = VOCImageLabelDataset(require_seg_map=False, **kwargs)
    assert dataset.get_data_info(0)['seg_map_path'] is None
    assert dataset.get_data_info(1)['seg_map_path'] is not None
    with pytest.raises(ValueError, match='require_seg_map=True'):
        VOCImageLabelDataset(
            require_seg_map=False, cls_label_file=None, **kwargs)


def test_cls_labels_missing_names(root_copy):
    names = names_of(root_copy, 'train_aug')
    cls_file = osp.join(root_copy, 'partial.npy')
    save_cls_labels(cls_file, {n: np.eye(20)[0] for n in names[3:]})
    with pytest.raises(
            ValueError,
            match=re.escape(cls_file) + r'.*3 of the 12 images.*' + names[0]):
        VOCImageLabelDataset(data_root=root_copy, cls_label_file='partial.npy')


def test_no_foreground(root_copy):
    names = names_of(root_copy, 'train_aug')
    labels = np.load(
        osp.join(root_copy, 'cls_labels.npy'), allow_pickle=True).item()
    labels[names[4]] = np.zeros(20, np.float32)
    cls_file = osp.join(root_copy, 'empty_one.npy')
    save_cls_labels(cls_file, labels)
    with pytest.raises(
            ValueError, match=f'image {names[4]} .*' + re.escape(cls_file)):
        VOCImageLabelDataset(data_root=root_copy, cls_label_file=cls_file)

    png_path = osp.join(root_copy, 'SegmentationClassAug', names[5] + '.png')
    with Image.open(png_path) as png:
        png = png.copy()
    png.paste(0, (0, 0, 48, 48))
    png.save(png_path)
    with pytest.raises(ValueError, match=f'image {names[5]} .*the masks'):
        VOCImageLabelDataset(data_root=root_copy, cls_label_file=None)


def test_mask_with_bad_label_ids(root_copy):
    name = names_of(root_copy, 'train_aug')[1]
    png_path = osp.join(root_copy, 'SegmentationClassAug', name + '.png')
    with Image.open(png_path) as png:
        png = png.copy()
    png.paste(21, (0, 0, 4, 4))
    png.save(png_path)
    with pytest.raises(ValueError, match=re.escape(png_path) + r'.*\[21\]'):
        VOCImageLabelDataset(data_root=root_copy, cls_label_file=None)


def test_split_with_a_repeated_name_is_refused(synth_root, tmp_path):
    names = names_of(synth_root, 'val')
    ann = tmp_path / 'twice.txt'
    ann.write_text('\n'.join(names[:3] + ['', names[1]]) + '\n')
    with pytest.raises(ValueError, match=re.escape(
            f'split file {ann} lists 1 images more than once: '
            f'{names[1]} (lines 2 and 5)')):
        read_image_names(str(ann))
    with pytest.raises(ValueError, match='more than once'):
        VOCImageLabelDataset(data_root=synth_root, ann_file=str(ann))


def test_empty_split_is_refused(synth_root, tmp_path):
    ann = tmp_path / 'empty.txt'
    ann.write_text('\n  \n')
    with pytest.raises(ValueError,
                       match=re.escape(f'split file {ann} lists no image')):
        VOCImageLabelDataset(data_root=synth_root, ann_file=str(ann))
