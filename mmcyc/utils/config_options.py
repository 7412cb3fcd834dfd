# Copyright (c) mmcyc contributors. All rights reserved.
"""``--cfg-options`` helpers for the tools that call other tools.

A tool that runs ``tools/train.py`` / ``tools/test.py`` /
``tools/refine_cam.py`` as subprocesses passes its overrides as
``key=value`` strings; these helpers build such strings (and read them back)
the way mmengine's ``DictAction`` + ``Config.merge_from_dict`` take them.
List entries are addressed by index (``custom_hooks.0.mode=fixed``):
``merge_from_dict`` merges into a list when ``allow_list_keys`` is True, its
default.
"""
import argparse
from typing import Dict, List, Sequence, Union

from mmengine.config import Config, DictAction

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _as_config(cfg: Union[Config, str]) -> Config:
    return Config.fromfile(cfg) if isinstance(cfg, str) else cfg


def _data_root_keys(dataset: dict, key: str) -> List[str]:
    """Dotted keys of the ``data_root`` of a (wrapped) dataset config.

    Wrappers are followed through ``dataset`` (e.g. ``PairedVOCDataset``,
    ``RepeatDataset``) and ``datasets`` (``ConcatDataset``, by index) until a
    config with a ``data_root``; a leaf without one gets it set.
    """
    if 'data_root' in dataset:
        return [key]
    if isinstance(dataset.get('dataset'), dict):
        return _data_root_keys(dataset['dataset'], key + '.dataset')
    if isinstance(dataset.get('datasets'), (list, tuple)):
        return [
            k for i, sub in enumerate(dataset['datasets'])
            for k in _data_root_keys(sub, f'{key}.datasets.{i}')
        ]
    return [key]


def _loader_datasets(cfg: Union[Config, str],
                     loaders: Sequence[str]) -> List[tuple]:
    """``(dotted key, dataset config)`` of each given dataloader that has
    one (absent or ``None`` loaders are skipped)."""
    cfg = _as_config(cfg)
    found = []
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if loader_cfg and loader_cfg.get('dataset'):
            found.append((f'{loader}.dataset', loader_cfg['dataset']))
    return found


def data_root_options(cfg: Union[Config, str],
                      data_root: str,
                      loaders: Sequence[str] = LOADERS) -> List[str]:
    """``--cfg-options`` pointing every dataloader of a config at the data.

    Args:
        cfg (Config | str): The config or its file.
        data_root (str): The dataset folder.
        loaders (Sequence[str]): Dataloader entries to cover; absent or
            ``None`` ones are skipped. Defaults to train, val and test.

    Returns:
        list[str]: e.g. ``['train_dataloader.dataset.dataset.data_root=D']``
        for a paired dataset wrapping the image-label one.
    """
    options = []
    for key, dataset in _loader_datasets(cfg, loaders):
        options += [
            f'{root_key}.data_root={data_root}'
            for root_key in _data_root_keys(dataset, key)
        ]
    return options


def _pipeline_keys(dataset: dict, key: str) -> List[tuple]:
    """``(dotted key, pipeline)`` of every dataset config holding one."""
    found = []
    if isinstance(dataset.get('pipeline'), (list, tuple)):
        found.append((key + '.pipeline', dataset['pipeline']))
    if isinstance(dataset.get('dataset'), dict):
        found += _pipeline_keys(dataset['dataset'], key + '.dataset')
    for i, sub in enumerate(dataset.get('datasets') or ()):
        if isinstance(sub, dict):
            found += _pipeline_keys(sub, f'{key}.datasets.{i}')
    return found


def transform_options(cfg: Union[Config, str],
                      transform: str,
                      loaders: Sequence[str] = LOADERS,
                      **values) -> List[str]:
    """``--cfg-options`` setting arguments of a transform wherever it is.

    Every transform of type ``transform`` in the pipelines of the given
    dataloaders gets ``values``, addressed by its index, e.g. the CAM folder
    an AffinityNet's walk reads: ``transform_options(cfg,
    'LoadCAMFromFile', cam_dir=D)`` ->
    ``['test_dataloader.dataset.pipeline.1.cam_dir=D', ...]``.

    Raises:
        ValueError: If none of those pipelines has such a transform (naming
            the config).
    """
    cfg = _as_config(cfg)
    options = []
    for dataset_key, dataset in _loader_datasets(cfg, loaders):
        for key, pipeline in _pipeline_keys(dataset, dataset_key):
            options += [
                f'{key}.{i}.{name}={value}'
                for i, step in enumerate(pipeline)
                if isinstance(step, dict) and step.get('type') == transform
                for name, value in values.items()
            ]
    if not options:
        raise ValueError(
            f'{cfg.filename}: no {transform} in the pipelines of '
            f'{", ".join(loaders)}; expected one to set {sorted(values)}')
    return options


def parse_cfg_options(options: Sequence[str]) -> Dict:
    """``['a.b=1', 'c=x']`` -> the dict ``DictAction`` makes of them.

    The result goes to ``Config.merge_from_dict``; the values are parsed as
    ``tools/train.py`` parses them (int, float, bool, None, lists, str).
    """
    if not options:
        return {}
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def final_checkpoint_name(cfg: Union[Config, str]) -> str:
    """File name of a training's last checkpoint, from its ``train_cfg``.

    ``epoch_<max_epochs>.pth`` for an epoch-based loop,
    ``iter_<max_iters>.pth`` for an iteration-based one (mmengine's
    ``CheckpointHook`` always saves the last one).
    """
    train_cfg = _as_config(cfg).get('train_cfg')
    if not train_cfg:
        raise ValueError('the config has no train_cfg')
    if 'max_epochs' in train_cfg:
        return f'epoch_{train_cfg["max_epochs"]}.pth'
    if 'max_iters' in train_cfg:
        return f'iter_{train_cfg["max_iters"]}.pth'
    raise ValueError(f'train_cfg has neither max_epochs nor max_iters: '
                     f'{dict(train_cfg)}')
