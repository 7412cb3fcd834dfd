# Copyright (c) mmcyc contributors. All rights reserved.
"""The image-label dataset of a config, on any split, for per-image steps.

Stage 3 (refinement) and the analysis tools read the images and labels of a
config's training set (e.g. the ``VOCImageLabelDataset`` inside a CyCSNet
config's ``PairedVOCDataset``) on another split file, one image at a time at
scale 1 and without augmentation.
"""
import copy
from typing import Tuple

from mmengine.config import Config
from mmseg.registry import DATASETS

# images at scale 1, normalised later by the model's data preprocessor
PLAIN_PIPELINE = (dict(type='LoadCheckedImageFromFile'),
                  dict(type='PackImageLabelInputs'))


def image_label_dataset_cfg(cfg: Config) -> dict:
    """The image-label dataset inside the config's training dataset.

    Wrappers (``dataset=``) are followed down to the first dataset config
    with a ``data_root``.

    Args:
        cfg (Config): A config with a ``train_dataloader`` (or, without
            one, a ``test_dataloader``).

    Returns:
        dict: A copy of that dataset config.

    Raises:
        ValueError: Naming the config file when it has no such dataset.
    """
    loader = cfg.get('train_dataloader') or cfg.get('test_dataloader')
    if not loader:
        raise ValueError(f'{cfg.filename} has no train_dataloader to take '
                         'the images and labels from')
    dataset = copy.deepcopy(loader['dataset'])
    while 'data_root' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    if 'data_root' not in dataset:
        raise ValueError(f'no dataset with a data_root in {cfg.filename}')
    return dataset


def build_image_label_split(dataset_cfg: dict, split: str):
    """Build ``dataset_cfg`` on the split file ``split`` (relative to its
    ``data_root``), loading images at scale 1 without masks or
    augmentation."""
    cfg = dict(
        dataset_cfg,
        ann_file=split,
        require_seg_map=False,
        pipeline=[dict(step) for step in PLAIN_PIPELINE])
    return DATASETS.build(cfg)


def config_split(cfg: Config, split: str) -> Tuple[object, str]:
    """The config's image-label dataset on ``split`` and its data_root."""
    dataset_cfg = image_label_dataset_cfg(cfg)
    return (build_image_label_split(dataset_cfg, split),
            dataset_cfg['data_root'])
