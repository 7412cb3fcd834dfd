"""Every shipped training config writes its checkpoints atomically."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAINING_CONFIGS = sorted(
    path for path in glob.glob(osp.join(REPO, 'configs', '*.py'))
    if not osp.basename(path).startswith('pipeline_'))


def test_every_training_config_is_covered():
    names = {osp.basename(path) for path in TRAINING_CONFIGS}
    assert {'cam_resnet38_synthvoc.py', 'cyc_resnet38_voc.py',
            'aff_resnet38_voc.py',
            'fcn_r18-d8_synthvoc-pseudo.py'} <= names


@pytest.mark.parametrize('config', TRAINING_CONFIGS,
                         ids=[osp.basename(p) for p in TRAINING_CONFIGS])
def test_checkpoints_go_through_the_atomic_backend(config):
    cfg = Config.fromfile(config)
    hook = cfg.default_hooks.checkpoint
    assert hook.get('backend_args') == dict(backend='atomic_local'), (
        f'{config}: default_hooks.checkpoint.backend_args should be '
        "dict(backend='atomic_local') (mmcyc.fileio.AtomicLocalBackend)")
