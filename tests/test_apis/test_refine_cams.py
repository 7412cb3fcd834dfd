"""Stage 3 as a library step, called in process (the tool is tested in
``tests/test_tools/test_refine_cam.py``)."""
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmcyc  # noqa: F401
from mmcyc.apis import refine_cams
from mmcyc.datasets.voc_image_label import read_image_names
from mmcyc.utils import load_cam

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
    results = refine_cams(cfg, weights, cam_dir, out, num_refs=4,
                          score=True, workers=0)
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
