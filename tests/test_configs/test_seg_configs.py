"""Stage-5 configs read masks through the checked loaders.

mmseg's ``LoadAnnotations`` takes a pseudo or val mask with label 30 without
a word (the mIoU just changes); ``LoadCheckedAnnotations`` refuses it naming
the file.
"""
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import TRANSFORMS
from mmseg.utils import register_all_modules
from PIL import Image

import mmcyc  # noqa: F401

SEG_CONFIGS = ('configs/fcn_r18-d8_synthvoc-pseudo.py',
               'configs/deeplabv3plus_r101-d8_voc-pseudo.py')


@pytest.mark.parametrize('config', SEG_CONFIGS)
@pytest.mark.parametrize('loader', ['train', 'val', 'test'])
def test_seg_config_checks_label_ids(config, loader, tmp_path):
    register_all_modules()
    cfg = Config.fromfile(config)
    steps = cfg[f'{loader}_dataloader'].dataset.pipeline
    kinds = [step['type'] for step in steps]
    assert 'LoadCheckedAnnotations' in kinds and 'LoadAnnotations' not in kinds
    assert 'LoadCheckedImageFromFile' in kinds
    mask = np.zeros((8, 8), np.uint8)
    mask[2, 3] = 30
    path = tmp_path / 'bad.png'
    Image.fromarray(mask).save(path)
    step = TRANSFORMS.build(steps[kinds.index('LoadCheckedAnnotations')])
    with pytest.raises(ValueError, match=f'mask {path} has label ids \\[30\\]'):
        step(dict(seg_map_path=str(path), reduce_zero_label=False,
                  seg_fields=[]))
