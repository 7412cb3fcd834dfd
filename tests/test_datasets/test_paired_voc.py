import logging
import os
import os.path as osp
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import FUNCTIONS, DefaultScope
from mmengine.runner import Runner
from mmseg.models import SegDataPreProcessor
from mmseg.registry import DATA_SAMPLERS, DATASETS

from mmcyc.datasets import (PairedVOCDataset, PairSampler,
                            VOCImageLabelDataset, pair_collate,
                            save_cls_labels)

PIPELINE = [
    dict(type='LoadCheckedImageFromFile'),
    dict(
        type='RandomResize',
        scale=(64, 64),
        ratio_range=(0.9, 1.25),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=(48, 48)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackImageLabelInputs'),
]


@pytest.fixture(autouse=True)
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(scope='module')
def synth_labels(tiny_synthvoc):
    """name -> (20,) bool label, read straight from the generated file."""
    raw = np.load(
        osp.join(tiny_synthvoc, 'cls_labels.npy'), allow_pickle=True).item()
    return {name: label > 0 for name, label in raw.items()}


@pytest.fixture
def synth_pairs(tiny_synthvoc):
    return PairedVOCDataset(
        dict(
            type='VOCImageLabelDataset',
            data_root=tiny_synthvoc,
            ann_file='ImageSets/Segmentation/train_aug.txt',
            pipeline=PIPELINE))


def label_dataset(root, labels):
    """A VOCImageLabelDataset (no image files) over given labels."""
    os.makedirs(root, exist_ok=True)
    names = [f'img_{i:03d}' for i in range(len(labels))]
    table = {}
    for name, classes in zip(names, labels):
        vec = np.zeros(20, np.uint8)
        vec[list(classes)] = 1
        table[name] = vec
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    save_cls_labels(osp.join(root, 'cls_labels.npy'), table)
    return VOCImageLabelDataset(
        data_root=str(root),
        ann_file='train.txt',
        check_files=False,
        require_seg_map=False)


def name_of(info):
    return osp.splitext(osp.basename(info['img_path']))[0]


def sampler_pairs(dataset, seed=0, epoch=0, rank=0, world_size=1,
                  monkeypatch=None, **kwargs):
    if world_size > 1:
        monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info',
                            lambda: (rank, world_size))
    sampler = PairSampler(dataset, seed=seed, **kwargs)
    sampler.set_epoch(epoch)
    return list(sampler)


@contextmanager
def captured_warnings():
    records = []

    class Handler(logging.Handler):

        def emit(self, record):
            records.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Handler(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_pairs_share_a_class(synth_pairs, synth_labels):
    names = [name_of(synth_pairs.get_data_info(i))
             for i in range(len(synth_pairs))]
    for epoch in range(4):
        pairs = sampler_pairs(synth_pairs, seed=5, epoch=epoch)
        assert sorted(i for i, _ in pairs) == list(range(len(synth_pairs)))
        for i, j in pairs:
            assert i != j
            assert (synth_labels[names[i]] & synth_labels[names[j]]).any()


def test_same_seed_same_pairs_epochs_differ(synth_pairs):
    first = sampler_pairs(synth_pairs, seed=7, epoch=0)
    assert sampler_pairs(synth_pairs, seed=7, epoch=0) == first
    assert sampler_pairs(synth_pairs, seed=7, epoch=1) != first
    partners = [dict(sampler_pairs(synth_pairs, seed=7, epoch=e))
                for e in range(3)]
    assert partners[0] != partners[1] != partners[2]
    assert sampler_pairs(synth_pairs, seed=8, epoch=0) != first


@pytest.fixture
def odd_synth_pairs(tiny_synthvoc, tmp_path):
    """synth_pairs over an odd number of pairable images (train_aug minus
    one image if needed), so that a 2-rank round_up has something to pad."""
    split = osp.join(tiny_synthvoc, 'ImageSets', 'Segmentation',
                     'train_aug.txt')
    with open(split) as f:
        names = f.read().split()
    for drop in [None] + names:
        ann_file = tmp_path / 'train_aug_odd.txt'
        ann_file.write_text(''.join(f'{n}\n' for n in names if n != drop))
        pairs = PairedVOCDataset(
            dict(
                type='VOCImageLabelDataset',
                data_root=tiny_synthvoc,
                ann_file=str(ann_file),
                pipeline=PIPELINE))
        if len(pairs) % 2 == 1:
            return pairs
    raise AssertionError('no odd-sized subset of train_aug found')


def test_distributed_shards(odd_synth_pairs, monkeypatch):
    synth_pairs = odd_synth_pairs
    n = len(synth_pairs)
    assert n % 2 == 1  # so that round_up has something to pad
    whole = dict(sampler_pairs(synth_pairs, seed=3, epoch=2))
    shards = [
        sampler_pairs(
            synth_pairs, seed=3, epoch=2, rank=r, world_size=2,
            monkeypatch=monkeypatch, round_up=False) for r in range(2)
    ]
    idx0, idx1 = ([i for i, _ in s] for s in shards)
    assert not set(idx0) & set(idx1)
    assert sorted(idx0 + idx1) == list(range(n))
    # the partners do not depend on the rank or the world size
    for shard in shards:
        assert all(whole[i] == j for i, j in shard)
    padded = [
        sampler_pairs(
            synth_pairs, seed=3, epoch=2, rank=r, world_size=2,
            monkeypatch=monkeypatch) for r in range(2)
    ]
    assert len(padded[0]) == len(padded[1]) == (n + 1) // 2


def test_int_index_partner_is_seeded(synth_pairs, synth_labels):
    partners = [synth_pairs.partner_index(i) for i in range(len(synth_pairs))]
    assert partners == [
        synth_pairs.partner_index(i) for i in range(len(synth_pairs))
    ]
    other = PairedVOCDataset(synth_pairs.dataset, seed=1)
    assert partners != [other.partner_index(i) for i in range(len(other))]
    item = synth_pairs[4]
    a, b = item['a']['data_samples'], item['b']['data_samples']
    assert b.img_path == synth_pairs.get_data_info(partners[4])['img_path']
    name_a = osp.splitext(osp.basename(a.img_path))[0]
    name_b = osp.splitext(osp.basename(b.img_path))[0]
    expected = (synth_labels[name_a] & synth_labels[name_b]).astype(
        np.float32)
    for sample in (a, b):
        assert sample.gt_shared_label.dtype == torch.float32
        np.testing.assert_array_equal(sample.gt_shared_label.numpy(),
                                      expected)


def test_collate_batch_contract(synth_pairs, synth_labels):
    pairs = sampler_pairs(synth_pairs, seed=0)[:3]
    batch = pair_collate([synth_pairs[p] for p in pairs])
    assert len(batch['inputs']) == len(batch['data_samples']) == 6
    for k, (i, j) in enumerate(pairs):
        a, b = batch['data_samples'][k], batch['data_samples'][3 + k]
        assert a.img_path == synth_pairs.get_data_info(i)['img_path']
        assert b.img_path == synth_pairs.get_data_info(j)['img_path']
        la = synth_labels[name_of(synth_pairs.get_data_info(i))]
        lb = synth_labels[name_of(synth_pairs.get_data_info(j))]
        np.testing.assert_array_equal(a.gt_img_label.numpy(), la)
        np.testing.assert_array_equal(b.gt_img_label.numpy(), lb)
        for sample in (a, b):
            np.testing.assert_array_equal(sample.gt_shared_label.numpy(),
                                          (la & lb).astype(np.float32))
    out = SegDataPreProcessor(size=(48, 48))(batch, training=True)
    assert out['inputs'].shape == (6, 3, 48, 48)
    assert [s.img_path for s in out['data_samples']
            ] == [s.img_path for s in batch['data_samples']]
    assert all('gt_shared_label' in s for s in out['data_samples'])
    with pytest.raises(TypeError, match='dict\\(a=..., b=...\\)'):
        pair_collate([synth_pairs[pairs[0]]['a']])


def test_build_from_config_through_runner(tiny_synthvoc):
    # the example of the class docstring, as the Runner builds it
    loader = Runner.build_dataloader(
        dict(
            batch_size=4,
            num_workers=2,
            sampler=dict(type='PairSampler', shuffle=True),
            collate_fn=dict(type='pair_collate'),
            dataset=dict(
                type='PairedVOCDataset',
                dataset=dict(
                    type='VOCImageLabelDataset',
                    data_root=tiny_synthvoc,
                    ann_file='ImageSets/Segmentation/train_aug.txt',
                    pipeline=PIPELINE))),
        seed=11)
    assert isinstance(loader.dataset, PairedVOCDataset)
    assert FUNCTIONS.get('pair_collate') is pair_collate
    expected = list(loader.sampler)[:4]
    batch = next(iter(loader))  # two worker processes
    paths = [s.img_path for s in batch['data_samples']]
    info = loader.dataset.get_data_info
    assert paths == ([info(i)['img_path'] for i, _ in expected] +
                     [info(j)['img_path'] for _, j in expected])


def test_partner_distribution(tmp_path):
    # image 0 has classes {0, 1}; class 0: images 0, 1; class 1: 0, 2, 3.
    # A class first (1/2 each), then an image of it: P = 1/2, 1/4, 1/4.
    pairs = PairedVOCDataset(
        label_dataset(tmp_path, [{0, 1}, {0}, {1, 5}, {1}]))
    rng = np.random.default_rng(0)
    partners = pairs.sample_partners(np.zeros(8000, np.int64), rng)
    freq = np.bincount(partners, minlength=4) / 8000
    np.testing.assert_allclose(freq, [0, 0.5, 0.25, 0.25], atol=0.02)
    assert [m.tolist() for m in pairs.class_index[:2]] == [[0, 1], [0, 2, 3]]


def test_image_without_partner_is_dropped(tmp_path):
    # class 7 occurs only in image 2, class 9 only in image 4 (with class 3)
    with captured_warnings() as warnings:
        pairs = PairedVOCDataset(
            label_dataset(tmp_path, [{3}, {3, 6}, {7}, {6}, {3, 9}]))
    assert len(pairs) == 4
    assert pairs.kept_indices.tolist() == [0, 1, 3, 4]
    assert len(warnings) == 1 and 'img_002.jpg' in warnings[0]
    assert '1 of 5' in warnings[0]
    partners = pairs.sample_partners(
        np.repeat(np.arange(4), 50), np.random.default_rng(1))
    # kept image 3 (img_004) may pair only through class 3
    assert set(partners[150:].tolist()) <= {0, 1}
    with pytest.raises(ValueError, match='not a pair'):
        pairs[(2, 0)]  # img_003 {6} and img_000 {3}


def test_error_when_no_pair_remains(tmp_path):
    with pytest.raises(ValueError, match='none of the 3 images'):
        PairedVOCDataset(label_dataset(tmp_path, [{0}, {1}, {2, 4}]))


def test_registry_and_bad_args(tmp_path):
    inner = label_dataset(tmp_path, [{0}, {0}])
    pairs = DATASETS.build(dict(type='PairedVOCDataset', dataset=inner))
    assert isinstance(pairs, PairedVOCDataset) and len(pairs) == 2
    assert pairs.metainfo['classes'][1] == 'aeroplane'
    sampler = DATA_SAMPLERS.build(
        dict(type='PairSampler', dataset=pairs, seed=0))
    assert sorted(sampler) == [(0, 1), (1, 0)]
    lazy = PairedVOCDataset(inner, lazy_init=True)
    assert len(lazy) == 2
    with pytest.raises(TypeError, match='sample_partners'):
        PairSampler(inner, seed=0)
    with pytest.raises(TypeError, match='BaseDataset'):
        PairedVOCDataset([1, 2])
    with pytest.raises(ValueError, match='-1'):
        PairedVOCDataset(inner, seed=-1)


def test_real_voc_pairs(tmp_path, monkeypatch, voc12_meta):
    for f in ('train_aug.txt', 'cls_labels.npy'):
        os.symlink(osp.join(voc12_meta, f), tmp_path / f)
    pairs = PairedVOCDataset(
        dict(
            type='VOCImageLabelDataset',
            data_root=str(tmp_path),
            ann_file='train_aug.txt',
            require_seg_map=False,
            check_files=False))
    assert len(pairs) == 10582
    raw = np.load(osp.join(voc12_meta, 'cls_labels.npy'), allow_pickle=True).item()
    with open(osp.join(voc12_meta, 'train_aug.txt')) as f:
        names = [osp.basename(line.split()[0])[:-4] for line in f]
    labels = np.stack([raw[n] for n in names]) > 0  # (10582, 20)
    for c in range(20):
        np.testing.assert_array_equal(pairs.class_index[c],
                                      np.flatnonzero(labels[:, c]))
    for epoch in range(2):
        shards = [
            sampler_pairs(pairs, seed=0, epoch=epoch, rank=r, world_size=2,
                          monkeypatch=monkeypatch) for r in range(2)
        ]
        index, partner = np.array(shards[0] + shards[1]).T  # (10582,) each
        assert sorted(index.tolist()) == list(range(10582))
        assert (index != partner).all()
        assert (labels[index] & labels[partner]).any(1).all()
