import hashlib
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmcyc.datasets import (decode_part_map, is_complete, load_part_map,
                            make_synthvoc, salient_from_part_map,
                            synth_sample, voc_palette)
from mmcyc.datasets.synthvoc import BODY_STYLES, NUM_CLASSES, NUM_PARTS

SMALL = dict(num_train=24, num_val=8, size=64)
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def tree_hashes(root):
    hashes = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = osp.join(dirpath, f)
            with open(path, 'rb') as fh:
                hashes[osp.relpath(path, root)] = hashlib.sha256(
                    fh.read()).hexdigest()
    return hashes


def read_list(root, split):
    with open(osp.join(root, 'ImageSets', 'Segmentation',
                       f'{split}.txt')) as f:
        return f.read().split('\n')[:-1]  # one name per line, final newline


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthvoc'))
    return root, make_synthvoc(root, seed=3, **SMALL)


def test_same_seed_gives_identical_files(tmp_path, small):
    root, _ = small
    again = str(tmp_path / 'again')
    make_synthvoc(again, seed=3, **SMALL)
    assert tree_hashes(again) == tree_hashes(root)
    other = str(tmp_path / 'other')
    make_synthvoc(other, seed=4, **SMALL)
    a, b = tree_hashes(root), tree_hashes(other)
    assert a.keys() == b.keys()
    jpgs = [k for k in a if k.endswith('.jpg')]
    assert all(a[k] != b[k] for k in jpgs)


def test_layout(small):
    root, _ = small
    train, train_aug, val = (
        read_list(root, s) for s in ('train', 'train_aug', 'val'))
    assert len(train_aug) == 24 and len(train) == 24 // 3 and len(val) == 8
    assert train == train_aug[:len(train)]  # VOC: train is part of train_aug
    assert not set(val) & set(train_aug) and len(set(train_aug + val)) == 32
    for name in train_aug + val:
        assert osp.isfile(osp.join(root, 'JPEGImages', name + '.jpg'))
        assert osp.isfile(
            osp.join(root, 'SegmentationClassAug', name + '.png'))
        in_seg = osp.isfile(osp.join(root, 'SegmentationClass', name + '.png'))
        assert in_seg == (name in train or name in val)
    assert len(os.listdir(osp.join(
        root, 'SegmentationClass'))) == len(train) + len(val)


def test_images_and_masks(small):
    root, _ = small
    cls_labels = np.load(
        osp.join(root, 'cls_labels.npy'), allow_pickle=True).item()
    names = read_list(root, 'train_aug') + read_list(root, 'val')
    assert sorted(cls_labels) == sorted(names)
    palette = voc_palette().reshape(-1).tolist()
    for name in names:
        with Image.open(osp.join(root, 'JPEGImages', name + '.jpg')) as img:
            assert img.format == 'JPEG' and img.mode == 'RGB' and img.size == (
                64, 64)
        for folder in ('SegmentationClassAug', 'SegmentationClass'):
            path = osp.join(root, folder, name + '.png')
            if not osp.isfile(path):
                continue
            with Image.open(path) as png:
                assert png.mode == 'P' and png.getpalette() == palette
                mask = np.array(png)
            values = np.unique(mask)
            assert set(values.tolist()) <= set(range(21)) | {255}
            assert 0 in values and 255 in values  # background and border band
        classes = values[(values > 0) & (values < 255)]
        expected = np.zeros(20, np.float32)
        expected[classes - 1] = 1
        assert cls_labels[name].dtype == np.float32
        np.testing.assert_array_equal(cls_labels[name], expected)


def test_object_statistics(small):
    root, result = small
    cls_labels = np.load(
        osp.join(root, 'cls_labels.npy'), allow_pickle=True).item()
    assert sorted(result['objects']) == sorted(cls_labels)
    for name, objects in result['objects'].items():
        classes = {o['class_id'] for o in objects}
        assert 1 <= len(objects) <= 3 and 1 <= len(classes) <= 2
        assert classes == set((np.flatnonzero(cls_labels[name]) + 1).tolist())
        for o in objects:
            assert 0 < o['part_pixels'] < 0.5 * (
                o['part_pixels'] + o['body_pixels'])


def test_synth_sample_matches_files(small):
    root, result = small
    index = 5
    name = f'synth_{index:06d}'
    sample = synth_sample(index, size=64, seed=3)
    with Image.open(osp.join(root, 'SegmentationClassAug',
                             name + '.png')) as png:
        np.testing.assert_array_equal(np.array(png), sample.mask)
    assert sample.objects == result['objects'][name]
    assert sample.image.shape == (64, 64, 3) and sample.image.dtype == np.uint8
    assert not (sample.part & (sample.instances == 0)).any()
    for k, o in enumerate(sample.objects):
        visible = sample.instances == k + 1
        assert (visible & sample.part).sum() == o['part_pixels']
        assert (visible & ~sample.part).sum() == o['body_pixels']
        # a visible object carries its class in the mask, except on the border
        # band
        assert set(np.unique(sample.mask[visible])) <= {o['class_id'], 255}


def object_colours(indices):
    """Mean colour of each object's visible part and body, and its class id
    (single-part variant)."""
    part, body, classes = [], [], []
    for i in indices:
        s = synth_sample(i, size=64, seed=0, variant='single-part')
        img = s.image.astype(np.float64)
        for k, o in enumerate(s.objects):
            visible = s.instances == k + 1
            part.append(img[visible & s.part].mean(0))
            body.append(img[visible & ~s.part].mean(0))
            classes.append(o['class_id'])
    return np.array(part), np.array(body), np.array(classes)


def test_part_tells_the_class_and_body_does_not():
    """Held-out nearest-centroid colour classifier: parts separate the classes,
    bodies
    only their style (shared by 5 classes, so about 1/5 accuracy)."""
    train, test = object_colours(range(60)), object_colours(range(60, 120))

    def accuracy(feat):
        ids = np.unique(train[2])
        centroids = np.stack([train[feat][train[2] == c].mean(0) for c in ids])
        dist = ((test[feat][:, None] - centroids[None])**2).sum(
            -1)  # (N, classes)
        return (ids[dist.argmin(1)] == test[2]).mean()

    assert accuracy(0) > 0.9
    assert accuracy(1) < 0.4
    assert NUM_CLASSES % len(BODY_STYLES) == 0 and len(BODY_STYLES) <= 5


def test_non_square_and_bad_arguments(tmp_path):
    sample = synth_sample(0, size=(48, 80), seed=1)
    assert sample.image.shape == (48, 80, 3) and sample.mask.shape == (48, 80)
    with pytest.raises(ValueError, match='size'):
        synth_sample(0, size=16)
    with pytest.raises(ValueError, match='num_train_aug_extra'):
        make_synthvoc(
            str(tmp_path), num_train=6, num_val=2, num_train_aug_extra=6)
    with pytest.raises(ValueError, match='num_train'):
        make_synthvoc(str(tmp_path), num_train=0)


def test_is_complete(tmp_path, small):
    root, _ = small
    assert is_complete(root, seed=3, **SMALL)
    assert not is_complete(root, seed=4, **SMALL)
    assert not is_complete(root, seed=3, num_train=24, num_val=8, size=96)
    assert not is_complete(str(tmp_path / 'absent'))
    with open(osp.join(root, 'synthvoc_meta.json')) as f:
        meta = json.load(f)
    assert meta['args'] == dict(
        num_train=24, num_val=8, size=[64, 64], seed=3, num_train_aug_extra=16,
        variant='multi-part')
    assert not is_complete(root, seed=3, variant='single-part', **SMALL)
    # an interrupted regeneration (meta removed first) is detected
    partial = str(tmp_path / 'partial')
    make_synthvoc(partial, num_train=3, num_val=1, size=32)
    os.remove(osp.join(partial, 'synthvoc_meta.json'))
    assert not is_complete(partial, num_train=3, num_val=1, size=32)


def test_cli_default_sizes(tmp_path):
    out = str(tmp_path / 'cli')
    script = osp.join(REPO, 'tools', 'dataset_converters', 'make_synthvoc.py')
    proc = subprocess.run([sys.executable, script, out],
                          capture_output=True,
                          text=True,
                          cwd=REPO,
                          check=True)
    assert 'train 80, train_aug 240, val 60' in proc.stdout
    assert is_complete(out)
    assert len(read_list(out, 'train_aug')) == 240
    proc = subprocess.run([sys.executable, script, out, '--skip-existing'],
                          capture_output=True,
                          text=True,
                          cwd=REPO,
                          check=True)
    assert 'skipped' in proc.stdout


def test_part_maps(small):
    """The part map: the mask's classes, each object's parts, one salient."""
    root, result = small
    for index in (0, 5, 11, 30):
        name = f'synth_{index:06d}'
        sample = synth_sample(index, size=64, seed=3)
        np.testing.assert_array_equal(load_part_map(root, name),
                                      sample.part_map)
        class_id, role = decode_part_map(sample.part_map)
        labelled = sample.mask != 255
        np.testing.assert_array_equal(class_id[labelled],
                                      sample.mask[labelled])
        assert ((role >= 0) == (sample.instances > 0)).all()
        np.testing.assert_array_equal(role > 0, sample.part)
        np.testing.assert_array_equal(
            salient_from_part_map(sample.part_map), sample.salient)
        for k, o in enumerate(sample.objects):
            visible = sample.instances == k + 1
            assert [p['part'] for p in o['parts']] == list(range(NUM_PARTS))
            assert sum(p['salient'] for p in o['parts']) == 1
            for p in o['parts']:
                on_part = visible & (role == 1 + p['part'])
                assert on_part.sum() == p['pixels'] > 0
                assert (sample.salient[on_part] == p['salient']).all()
            assert (role[visible] == 0).sum() == o['body_pixels']
    assert not (sample.salient & (sample.instances == 0)).any()
    with pytest.raises(FileNotFoundError, match='absent_image'):
        load_part_map(root, 'absent_image')


def test_multi_part_poses_the_papers_problem():
    """Which part is salient varies; a salient part's colour tells class and
    part; a weak part is much closer to the body colour than a salient one."""
    feats, keys, salient_share, contrast = [], [], [], []
    for i in range(80):
        s = synth_sample(i, size=64, seed=0)
        img = s.image.astype(np.float64)
        _, role = decode_part_map(s.part_map)
        for k, o in enumerate(s.objects):
            visible = s.instances == k + 1
            body = img[visible & (role == 0)].mean(0)
            gap = {}
            for p in o['parts']:
                colour = img[visible & (role == 1 + p['part'])].mean(0)
                gap[p['salient']] = np.abs(colour - body).sum()
                if p['salient']:
                    feats.append(colour)
                    keys.append((o['class_id'], p['part']))
                    salient_share.append(p['part'])
            contrast.append(gap[False] / gap[True])
    # both parts are the salient one for a good share of the objects
    assert 0.3 < np.mean(salient_share) < 0.7
    assert np.median(contrast) < 0.6
    feats, keys = np.array(feats), [f'{c}/{p}' for c, p in keys]
    half = len(keys) // 2
    ids = sorted(set(keys[:half]))
    centroids = np.stack([
        feats[:half][[k == i for k in keys[:half]]].mean(0) for i in ids
    ])
    test = [j for j in range(half, len(keys)) if keys[j] in ids]
    dist = ((feats[test][:, None] - centroids[None])**2).sum(-1)
    predicted = [ids[d] for d in dist.argmin(1)]
    assert np.mean([predicted[n] == keys[j]
                    for n, j in enumerate(test)]) > 0.85


def test_single_part_control(tmp_path):
    """The control variant: one always-salient part, recorded in the meta."""
    root = str(tmp_path / 'single')
    result = make_synthvoc(root, num_train=6, num_val=2, size=64, seed=3,
                           variant='single-part')
    assert is_complete(root, num_train=6, num_val=2, size=64, seed=3,
                       variant='single-part')
    for name, objects in result['objects'].items():
        for o in objects:
            assert [(p['part'], p['salient']) for p in o['parts']] == [
                (0, True)]
        _, role = decode_part_map(load_part_map(root, name))
        assert set(np.unique(role).tolist()) <= {-1, 0, 1}
    with pytest.raises(ValueError, match='variant'):
        synth_sample(0, variant='two-part')
