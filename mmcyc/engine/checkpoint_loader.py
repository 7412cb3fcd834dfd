# Copyright (c) mmcyc contributors. All rights reserved.
"""Loading full training checkpoints under torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default, but mmengine
0.10.7 calls ``torch.load`` without the argument, so ``--resume`` fails on the
``HistoryBuffer`` and numpy objects every mmengine checkpoint holds (upstream
mmengine issue #1655). :func:`register_trusted_checkpoint_loader` re-registers
mmengine's local-file loader with ``weights_only=False``.

Note:
    ``weights_only=False`` unpickles arbitrary objects: only load checkpoints
    you trust. The tools call this once at start-up; nothing happens at import.
"""
import os.path as osp

import torch
from mmengine.runner import CheckpointLoader


def _load_local_trusted(filename: str, map_location=None):
    """mmengine's local loader with ``weights_only=False``."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def register_trusted_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints with ``weights_only=False``."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_local_trusted, force=True)
