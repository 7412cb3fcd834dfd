"""Stage 3 as a library step, called in process (the tool is tested in
``tests/test_tools/test_refine_cam.py``)."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmcyc  # noqa: F401
from mmcyc.apis import refine_cams
from mmcyc.datasets.voc_image_label import read_image_names
from mmcyc.utils import load_cam, save_cam

init_default_scope('mmseg')
CONFIG = 'tests/data/cyc_tiny_synthvoc.py'


@pytest.fixture
def cfg(tiny_synthvoc):
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.dataset.data_root = tiny_synthvoc
    return cfg


def test_refine_cams_writes_scores_and_resumes(cfg, tiny_stage_inputs,
                                               tiny_synthvoc, tmp_path):
    out = str(tmp_path / 'refined')
    weights = dict(checkpoint=tiny_stage_inputs['cyc'])
    cam_dir = tiny_stage_inputs['cam_dir']
    torch.backends.cudnn.benchmark = True
    results = refine_cams(cfg, weights, cam_dir, out, num_refs=4,
                          score=True, workers=0)
    # every image has its own shape: no cudnn autotuning
    assert torch.backends.cudnn.benchmark is False
    targets = read_image_names(
        osp.join(tiny_synthvoc, 'ImageSets/Segmentation/train.txt'))
    assert results['num_targets'] == results['refined'] == len(targets)
    assert results['num_refs'] == 4
    assert sorted(f for f in os.listdir(out) if f.endswith('.npz')) == \
        sorted(f'{t}.npz' for t in targets)
    for name in targets:
        cams, _ = load_cam(osp.join(out, f'{name}.npz'))
        before, _ = load_cam(osp.join(cam_dir, f'{name}.npz'))
        assert (cams >= before).all()  # Eq. 14 never lowers a CAM
    assert 0 <= results['mIoU_unrefined'] <= 100
    assert 0 <= results['mIoU'] <= 100
    # a second call finds every target done and scores the same files
    again = refine_cams(cfg, weights, cam_dir, out, num_refs=4, score=True,
                        workers=0)
    assert again['refined'] == 0
    assert again['mIoU'] == results['mIoU']
    # other settings into the same folder: refused, the folder named
    with pytest.raises(Exception, match='refined'):
        refine_cams(cfg, weights, cam_dir, out, num_refs=2, workers=0)


def test_refine_cams_with_the_classifier_features(cfg, tiny_stage_inputs,
                                                  tmp_path):
    out = str(tmp_path / 'refined_cls')
    results = refine_cams(
        cfg, dict(classifier_checkpoint=tiny_stage_inputs['cls']),
        tiny_stage_inputs['cam_dir'], out, num_refs=2, workers=0)
    assert results['refined'] == results['num_targets'] > 0
    assert 'mIoU' not in results  # not scored


@pytest.mark.parametrize('which', ['bank', 'target'])
def test_cams_of_another_size_name_the_file(cfg, tiny_stage_inputs,
                                            tiny_synthvoc, tmp_path, which):
    """A CAM folder from another source that wrote another scale: the bank
    image's or the target's CAM file is named with both sizes."""
    src = tiny_stage_inputs['cam_dir']
    cam_dir = tmp_path / 'cams'
    cam_dir.mkdir()
    for name in os.listdir(src):
        if name.endswith('.npz'):
            with open(osp.join(src, name), 'rb') as f:
                (cam_dir / name).write_bytes(f.read())
    split = 'ImageSets/Segmentation/train.txt'
    train = read_image_names(osp.join(tiny_synthvoc, split))
    aug = read_image_names(osp.join(
        tiny_synthvoc, 'ImageSets/Segmentation/train_aug.txt'))
    # a bank image outside train, or a target refined against a bank of
    # the other images
    name = [n for n in aug if n not in train][0] if which == 'bank' \
        else train[0]
    cams, labels = load_cam(str(cam_dir / f'{name}.npz'))
    save_cam(str(cam_dir / f'{name}.npz'), cams[:, :32, :48], labels)
    bank_split = 'ImageSets/Segmentation/train_aug.txt'
    if which == 'target':
        others = tmp_path / 'bank.txt'
        others.write_text('\n'.join(n for n in aug if n != name) + '\n')
        bank_split = str(others)
    with pytest.raises(ValueError) as err:
        refine_cams(cfg, dict(checkpoint=tiny_stage_inputs['cyc']),
                    str(cam_dir), str(tmp_path / 'out'), split=split,
                    bank_split=bank_split, workers=0)
    assert f'{name}.npz has size (32, 48) but image' in str(err.value)
    assert 'has (64, 64): expected CAMs at the original image size' in str(
        err.value)
