"""PseudoMaskWriterHook: prediction -> VOC palette PNG -> mmseg label map."""
import os
import os.path as osp
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample
from PIL import Image

from mmcyc.datasets.cls_labels import voc_palette
from mmcyc.engine.hooks.pseudo_mask_writer_hook import (PseudoMaskWriterHook,
                                                        write_palette_png)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def label_map(h=5, w=7, seed=0):
    """(H, W) int64 labels over 0..20 with one ignore pixel."""
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 21, size=(h, w))
    mask[0, 0] = 255
    return mask


def sample(name, mask):
    data_sample = SegDataSample(metainfo=dict(
        img_path=f'/data/JPEGImages/{name}.jpg', ori_shape=mask.shape))
    data_sample.pred_sem_seg = PixelData(
        data=torch.from_numpy(mask)[None])  # (1, H, W)
    return data_sample


def test_png_mode_palette_and_values(tmp_path):
    mask = label_map()
    path = str(tmp_path / 'a.png')
    write_palette_png(mask, path)
    with Image.open(path) as png:
        assert png.mode == 'P'
        palette = np.asarray(png.getpalette()[:768], np.uint8).reshape(-1, 3)
        values = np.asarray(png)
    np.testing.assert_array_equal(palette, voc_palette())
    np.testing.assert_array_equal(values, mask)
    assert os.listdir(tmp_path) == ['a.png']  # no temporary file left


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    path = str(tmp_path / 'a.png')
    write_palette_png(label_map(seed=1), path)
    before = open(path, 'rb').read()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(Image.Image, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        write_palette_png(label_map(seed=2), path)
    # the old file is intact and the temporary file is gone
    assert os.listdir(tmp_path) == ['a.png']
    assert open(path, 'rb').read() == before


def test_concurrent_writers_leave_one_whole_file(tmp_path):
    # the padded tail of a distributed sampler: two ranks, the same image
    mask = label_map(64, 64)
    path = str(tmp_path / 'a.png')
    threads = [
        threading.Thread(target=write_palette_png, args=(mask, path))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert os.listdir(tmp_path) == ['a.png']
    np.testing.assert_array_equal(np.asarray(Image.open(path)), mask)


@pytest.mark.parametrize('mask, match', [
    (np.zeros((1, 4, 4), np.int64), r'\(H, W\) integer'),
    (np.zeros((4, 4), np.float32), r'\(H, W\) integer'),
    (np.full((4, 4), 256), r'\[0, 255\]'),
    (np.full((4, 4), -1), r'\[0, 255\]'),
])
def test_bad_masks_raise(tmp_path, mask, match):
    with pytest.raises(ValueError, match=match):
        write_palette_png(mask, str(tmp_path / 'a.png'))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('kwargs, match', [
    (dict(out_dir=''), 'out_dir'),
    (dict(out_dir=None), 'out_dir'),
    (dict(out_dir='x', pred_key=''), 'pred_key'),
    (dict(out_dir='x', loops=('train', )), 'loops'),
    (dict(out_dir='x', loops=()), 'loops'),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PseudoMaskWriterHook(**kwargs)


def test_out_dir_is_required():
    with pytest.raises(TypeError):
        HOOKS.build(dict(type='PseudoMaskWriterHook'))


def test_toy_test_run_writes_every_sample(tmp_path):
    out_dir = str(tmp_path / 'masks')
    hook = HOOKS.build(dict(type='PseudoMaskWriterHook', out_dir=out_dir))
    runner = SimpleNamespace()
    masks = {f'img_{i}': label_map(6, 4 + i, seed=i) for i in range(5)}
    names = sorted(masks)
    hook.before_test_epoch(runner)
    for batch_idx, batch in enumerate((names[:2], names[2:])):
        outputs = [sample(name, masks[name]) for name in batch]
        hook.after_test_iter(runner, batch_idx, data_batch={},
                             outputs=outputs)
    hook.after_test_epoch(runner)
    assert hook.num_written == 5
    assert sorted(os.listdir(out_dir)) == [n + '.png' for n in names]
    for name in names:
        with Image.open(osp.join(out_dir, name + '.png')) as png:
            assert png.mode == 'P' and png.size == masks[name].shape[::-1]
            np.testing.assert_array_equal(np.asarray(png), masks[name])


def test_loops_select_val_or_test(tmp_path):
    hook = PseudoMaskWriterHook(str(tmp_path), loops='test')
    hook.after_val_iter(None, 0, {}, [sample('v', label_map())])
    assert os.listdir(tmp_path) == []
    hook.after_test_iter(None, 0, {}, [sample('t', label_map())])
    assert os.listdir(tmp_path) == ['t.png']


def test_bad_samples_raise(tmp_path):
    hook = PseudoMaskWriterHook(str(tmp_path))
    no_path = SegDataSample()
    no_path.pred_sem_seg = PixelData(data=torch.zeros(1, 2, 2))
    with pytest.raises(KeyError, match='img_path'):
        hook.write(no_path)
    with pytest.raises(KeyError, match='pred_sem_seg'):
        hook.write(SegDataSample(metainfo=dict(img_path='a.jpg')))
    multi = sample('m', label_map())
    multi.pred_sem_seg = PixelData(data=torch.zeros(2, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\(1, H, W\)'):
        hook.write(multi)


def test_mmseg_load_annotations_reads_the_mask_back(tmp_path):
    mask = label_map(9, 11)
    path = PseudoMaskWriterHook(str(tmp_path)).write(sample('voc', mask))
    results = LoadAnnotations()(
        dict(seg_map_path=path, reduce_zero_label=False, seg_fields=[]))
    np.testing.assert_array_equal(results['gt_seg_map'], mask)


def test_runner_test_writes_the_val_split(tmp_path, tiny_synthvoc):
    """A real ``runner.test()`` of the stage-5 synthetic config."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'fcn_r18-d8_synthvoc-pseudo.py'))
    out_dir = str(tmp_path / 'masks')
    cfg.work_dir = str(tmp_path / 'work')
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader.dataset.data_root = tiny_synthvoc
    cfg.custom_hooks = [dict(type='PseudoMaskWriterHook', out_dir=out_dir)]
    cfg.visualizer.name = 'pseudo_mask_writer_test'
    cfg.default_hooks.pop('visualization')
    Runner.from_cfg(cfg).test()
    with open(osp.join(tiny_synthvoc, 'ImageSets/Segmentation/val.txt')) as f:
        names = f.read().split()
    assert sorted(os.listdir(out_dir)) == sorted(n + '.png' for n in names)
    for name in names:
        with Image.open(osp.join(out_dir, name + '.png')) as png:
            assert png.mode == 'P' and png.size == (64, 64)
            assert np.asarray(png).max() <= 20
