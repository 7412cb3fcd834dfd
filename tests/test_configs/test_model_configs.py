"""Every shipped model config builds, and building reads no file.

Weights arrive through ``init_weights()`` (``init_cfg``, CyCSNet's classifier
checkpoint) or ``load_from``; config parsing may read files, model building
may not.
"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmcyc  # noqa: F401
from mmcyc.models.segmentors.cycsnet import classifier_model_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# pipeline_*.py configure tools/run_pipeline.py, not a model
MODEL_CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(osp.join(REPO, 'configs', '*.py'))
    if not osp.basename(path).startswith('pipeline_'))
PIPELINE_CONFIGS = sorted(
    osp.relpath(path, REPO)
    for pattern in ('configs/pipeline_*.py', 'tests/data/pipeline_*.py')
    for path in glob.glob(osp.join(REPO, pattern)))


def test_every_model_config_is_checked():
    assert {'configs/cam_resnet38_voc.py', 'configs/cyc_resnet38_voc.py',
            'configs/cyc_resnet38_synthvoc.py',
            'configs/fcn_r18-d8_synthvoc-pseudo.py'} <= set(MODEL_CONFIGS)
    assert 'configs/pipeline_synthvoc.py' in PIPELINE_CONFIGS


@pytest.mark.parametrize('config', MODEL_CONFIGS)
def test_model_builds_without_reading_files(config, tmp_path, monkeypatch,
                                            request):
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, config))
    # no work_dirs/ nor pretrain/ here: a checkpoint read would fail anyway
    monkeypatch.chdir(tmp_path)
    request.getfixturevalue('no_file_access')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == cfg.model.type.split('.')[-1]


def stage_pairs():
    """(CyCSNet config, stage-1 config) of VOC and of each pipeline config."""
    pairs = {('configs/cyc_resnet38_voc.py', 'configs/cam_resnet38_voc.py')}
    for path in PIPELINE_CONFIGS:
        cfg = Config.fromfile(osp.join(REPO, path))
        pairs.add((cfg.cyc.config, cfg.cam.config))
    return sorted(pairs)


def c_config(model: dict) -> dict:
    """What C is built from, less ``test_cfg``: CyCSNet runs C's ``cam``
    only, never its ``predict``."""
    cfg = classifier_model_cfg(model)
    cfg.pop('test_cfg', None)
    return cfg


@pytest.mark.parametrize('cyc_config, cam_config', stage_pairs())
def test_cam_classifier_is_the_stage1_model(cyc_config, cam_config):
    """C, given in the CyCSNet config as a dict, is the model its stage-1
    checkpoint was trained with."""
    cyc = Config.fromfile(osp.join(REPO, cyc_config))
    cam = Config.fromfile(osp.join(REPO, cam_config))
    assert c_config(cyc.model.cam_classifier) == c_config(cam.model)
