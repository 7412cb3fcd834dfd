# Copyright (c) mmcyc contributors. All rights reserved.
"""Check a state dict against a model before loading it: keys and shapes.

mmengine's ``load_checkpoint(strict=False)`` (what ``Runner`` uses) only
logs mismatches, and ``nn.Module.load_state_dict(strict=True)`` ignores no
key and stops at the first shape. Every mmcyc place that loads weights for
evaluation, inference or as a frozen part checks with
:func:`check_state_dict` first, so a wrong checkpoint fails with one message
format: what was loaded, into what, and the first offending keys.
"""
from collections import OrderedDict
from typing import List, Mapping, Optional, Tuple

import torch
import torch.nn as nn

SHOWN_KEYS = 8  # offending keys listed per kind


def unwrap_state_dict(checkpoint: Mapping,
                      source: str = '<checkpoint>') -> 'OrderedDict':
    """Return the state dict of a bare state dict or ``{'state_dict': ..}``.

    A ``module.`` prefix (``DataParallel``) is stripped from every key.

    Args:
        checkpoint (Mapping): Loaded checkpoint.
        source (str): Name used in error messages.

    Returns:
        OrderedDict[str, Tensor]: The state dict.
    """
    if 'state_dict' in checkpoint:
        checkpoint = checkpoint['state_dict']
    bad = [k for k, v in checkpoint.items() if not torch.is_tensor(v)]
    if bad:
        raise ValueError(
            f'{source}: expected a state dict or {{"state_dict": ...}}, but '
            f'these entries are not tensors: {", ".join(map(str, bad[:10]))}')
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in checkpoint.items())


def check_state_dict_keys(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    ignore_missing: Tuple[str, ...] = ('num_batches_tracked', )
) -> Tuple[List[str], List[str]]:
    """Compare a state dict's keys with a model's.

    Args:
        model (nn.Module): Model to load into.
        state_dict (Mapping[str, Tensor]): Candidate state dict.
        ignore_missing (tuple[str]): Suffixes of model keys whose absence
            is harmless (BatchNorm's ``num_batches_tracked``, which
            ``BatchNorm`` fills in when loading). Defaults to
            ('num_batches_tracked',).

    Returns:
        tuple[list[str], list[str]]: Sorted missing keys (in the model, not
        in the state dict) and unexpected keys (the other way round).
    """
    model_keys = set(model.state_dict())
    missing = sorted(
        k for k in model_keys - set(state_dict)
        if not k.endswith(tuple(ignore_missing)))
    unexpected = sorted(set(state_dict) - model_keys)
    return missing, unexpected


def shape_mismatches(model: nn.Module,
                     state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    """The keys of a state dict whose tensor shape differs from the model's.

    Args:
        model (nn.Module): Model to load into.
        state_dict (Mapping[str, Tensor]): Candidate state dict.

    Returns:
        list[str]: ``'key: checkpoint (shape) vs model (shape)'`` for every
        key of both whose shapes differ, in the state dict's order.
    """
    own = model.state_dict()
    return [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]


def state_dict_mismatch(model: nn.Module,
                        state_dict: Mapping[str, torch.Tensor],
                        allow_unexpected: bool = False) -> Optional[str]:
    """Say how a state dict fails to fit a model, or None if it fits.

    Args:
        model (nn.Module): Model to load into.
        state_dict (Mapping[str, Tensor]): Candidate state dict.
        allow_unexpected (bool): Keys the model does not have are fine
            (loading a part of a bigger network). Defaults to False.

    Returns:
        str | None: ``'<n> missing keys [...], <n> unexpected keys [...],
        <n> shape mismatches [...]'`` (the first keys of each kind; unexpected
        keys left out when allowed), or None.
    """
    missing, unexpected = check_state_dict_keys(model, state_dict)
    if allow_unexpected:
        unexpected = []
    mismatched = shape_mismatches(model, state_dict)
    if not (missing or unexpected or mismatched):
        return None
    parts = [f'{len(missing)} missing keys {missing[:SHOWN_KEYS]}']
    if not allow_unexpected:
        parts.append(
            f'{len(unexpected)} unexpected keys {unexpected[:SHOWN_KEYS]}')
    parts.append(f'{len(mismatched)} shape mismatches '
                 f'{mismatched[:SHOWN_KEYS // 2]}')
    return ', '.join(parts)


def check_state_dict(model: nn.Module,
                     state_dict: Mapping[str, torch.Tensor],
                     source: str,
                     target: Optional[str] = None,
                     allow_unexpected: bool = False,
                     hint: str = '') -> None:
    """Raise unless a state dict's keys and shapes fit a model.

    Args:
        model (nn.Module): Model to load into.
        state_dict (Mapping[str, Tensor]): Candidate state dict.
        source (str): What the state dict is, e.g. ``'checkpoint a.pth'``.
        target (str, optional): What it is loaded into; defaults to the
            model's class name.
        allow_unexpected (bool): See :func:`state_dict_mismatch`.
        hint (str): Appended to the message (what was expected instead).

    Raises:
        ValueError: ``'<source> does not match <target>: <mismatch><hint>'``.
    """
    mismatch = state_dict_mismatch(model, state_dict, allow_unexpected)
    if mismatch is not None:
        target = target or type(model).__name__
        raise ValueError(f'{source} does not match {target}: {mismatch}'
                         f'{hint}')
