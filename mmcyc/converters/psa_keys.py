# Copyright (c) mmcyc contributors. All rights reserved.
"""Map AffinityNet (``jiwoon-ahn/psa``) checkpoints onto mmcyc's key names.

Public ResNet-38 weights come in four layouts:

- ``imagenet``: psa's ``resnet38d.Net`` state dict (``conv1a.weight``,
  ``b2.bn_branch2a.weight``, ..., ``bn7.running_var``), possibly with an
  ImageNet classifier (``fc*`` / ``linear*``), which is dropped;
- ``cls``: ``res38_cls.pth`` (``resnet38_cls.Net``): backbone + ``fc8``;
- ``aff``: ``res38_aff.pth`` (``resnet38_aff.Net``): backbone + ``f8_3``,
  ``f8_4``, ``f8_5``, ``f9``;
- the MXNet original ``ilsvrc-cls_rna-a1_cls1000_ep-0001.params``
  (read by :mod:`.mxnet_params`), renamed as psa's ``convert_mxnet_to_torch``
  does and then treated as ``imagenet``.

The chain is ``load_psa_state_dict -> convert_psa_state_dict ->
save_converted`` (:func:`convert_checkpoint`; the renaming and saving are
:mod:`.key_mapping`'s, shared with the VGG-16 converter), and
:func:`load_checkpoint_strict` says which keys did not load (through
:mod:`mmcyc.utils.state_dict_check`).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from mmcyc.utils.state_dict_check import check_state_dict, unwrap_state_dict
from .key_mapping import (BACKBONE_PREFIX, ConversionReport,
                          detect_head_layout, rename_state_dict,
                          save_converted, unknown_keys_error)
from .mxnet_params import is_mxnet_params, load_mxnet_params

__all__ = [
    'BACKBONE_PREFIX', 'ConversionReport', 'HEAD_KEYS', 'LAYOUTS',
    'psa_backbone_keys', 'detect_layout', 'convert_psa_state_dict',
    'mxnet_key_to_psa', 'mxnet_params_to_psa', 'load_psa_state_dict',
    'convert_checkpoint', 'load_checkpoint_strict'
]

# psa head keys -> mmcyc names, per layout.
HEAD_KEYS: Dict[str, Dict[str, str]] = {
    'imagenet': {},
    'cls': {
        'fc8.weight': 'classifier.weight'
    },
    'aff': {
        'f8_3.weight': 'embed_head.projs.0.weight',
        'f8_4.weight': 'embed_head.projs.1.weight',
        'f8_5.weight': 'embed_head.projs.2.weight',
        'f9.weight': 'embed_head.fuse.weight',
    },
}
LAYOUTS = tuple(HEAD_KEYS)
# Block names of psa's resnet38d.Net; the first block of b2-b5 changes shape
# and so has a 1x1 ``conv_branch1`` shortcut, as have both bottlenecks.
_BASIC_BLOCKS = ('b2', 'b2_1', 'b2_2', 'b3', 'b3_1', 'b3_2', 'b4', 'b4_1',
                 'b4_2', 'b4_3', 'b4_4', 'b4_5', 'b5', 'b5_1', 'b5_2')
_SHORTCUT_BLOCKS = ('b2', 'b3', 'b4', 'b5')
_BOTTLENECK_BLOCKS = ('b6', 'b7')
_BN_PARAMS = ('weight', 'bias', 'running_mean', 'running_var')
# The ImageNet classifier of a backbone checkpoint (dropped, reported).
_IMAGENET_CLASSIFIER = re.compile(r'^(fc|linear)\w*\.')
# MXNet batch-norm suffix -> torch name (psa's ``bn_param_mx_pt``).
_MX_BN_PARAMS = {
    'beta': 'bias',
    'gamma': 'weight',
    'mean': 'running_mean',
    'var': 'running_var'
}


def psa_backbone_keys(with_num_batches_tracked: bool = False) -> List[str]:
    """State-dict keys of psa's ``resnet38d.Net`` (= mmcyc ``ResNet38``).

    Args:
        with_num_batches_tracked (bool): Include the BatchNorm
            ``num_batches_tracked`` buffers. Defaults to False.

    Returns:
        list[str]: Keys without prefix, in module order.
    """
    bn_params = _BN_PARAMS + (('num_batches_tracked', )
                              if with_num_batches_tracked else ())

    def bn(name: str) -> List[str]:
        return [f'{name}.{p}' for p in bn_params]

    keys = ['conv1a.weight']
    for block in _BASIC_BLOCKS:
        keys += bn(f'{block}.bn_branch2a') + [f'{block}.conv_branch2a.weight']
        keys += bn(f'{block}.bn_branch2b1') + [
            f'{block}.conv_branch2b1.weight'
        ]
        if block in _SHORTCUT_BLOCKS:
            keys.append(f'{block}.conv_branch1.weight')
    for block in _BOTTLENECK_BLOCKS:
        keys += bn(f'{block}.bn_branch2a') + [f'{block}.conv_branch2a.weight']
        keys += bn(f'{block}.bn_branch2b1') + [
            f'{block}.conv_branch2b1.weight'
        ]
        keys += bn(f'{block}.bn_branch2b2') + [
            f'{block}.conv_branch2b2.weight'
        ]
        keys.append(f'{block}.conv_branch1.weight')
    return keys + bn('bn7')


_BACKBONE_KEYS = frozenset(psa_backbone_keys(with_num_batches_tracked=True))


def detect_layout(keys) -> str:
    """Guess the psa layout of a (``module.``-free) state dict's keys.

    Returns:
        str: ``'cls'`` if ``fc8.weight`` is present, ``'aff'`` if any of
        ``f8_3/f8_4/f8_5/f9`` is, ``'imagenet'`` otherwise.
    """
    return detect_head_layout(keys, HEAD_KEYS)


def convert_psa_state_dict(
        state_dict: Mapping[str, torch.Tensor],
        layout: str = 'auto',
        allow_unknown: bool = False,
        source: str = '<state_dict>'
) -> Tuple['OrderedDict[str, torch.Tensor]', ConversionReport]:
    """Rename a psa state dict to mmcyc keys.

    Backbone keys get the ``backbone.`` prefix, head keys are renamed by
    :data:`HEAD_KEYS`, the ImageNet classifier is dropped, and a
    ``num_batches_tracked`` buffer (0) is added to every BatchNorm that
    lacks one, so the result loads strictly.

    Args:
        state_dict (Mapping[str, Tensor]): psa-keyed state dict (a
            ``module.`` prefix is stripped).
        layout (str): ``'auto'`` or one of :data:`LAYOUTS`.
            Defaults to 'auto'.
        allow_unknown (bool): Drop unknown keys instead of raising.
            Defaults to False.
        source (str): Name used in the report and errors.

    Returns:
        tuple[OrderedDict, ConversionReport]: mmcyc state dict and report.
    """
    out, report = rename_state_dict(
        state_dict,
        layout,
        HEAD_KEYS,
        _BACKBONE_KEYS,
        psa_backbone_keys(),
        allow_unknown,
        source,
        drop=_IMAGENET_CLASSIFIER)
    for key in list(out):
        if key.endswith('.running_mean'):
            counter = key[:-len('running_mean')] + 'num_batches_tracked'
            if counter not in out:
                out[counter] = torch.tensor(0, dtype=torch.long)
                report.added.append(counter)
    report.converted = len(out)
    return out, report


def mxnet_key_to_psa(name: str) -> Optional[str]:
    """psa's ``convert_mxnet_to_torch`` rule for one MXNet parameter name.

    ``arg:``/``aux:`` is stripped; ``conv1a*`` -> ``conv1a.weight``;
    ``linear1000*`` -> None (ImageNet classifier); ``res2a_branch1_weight``
    -> ``b2.conv_branch1.weight``; ``bn4b5_branch2b1_moving_var`` ->
    ``b4_5.bn_branch2b1.running_var``; ``bn7_gamma`` -> ``bn7.weight``.

    Args:
        name (str): MXNet name.

    Returns:
        str | None: psa key, or None for the dropped classifier.

    Raises:
        ValueError: If the name does not have the ResNet-38 form.
    """
    base = name.split(':', 1)[1] if name.startswith(('arg:', 'aux:')) \
        else name
    toks = base.split('_')
    try:
        if 'conv1a' in toks[0]:
            return 'conv1a.weight'
        if 'linear1000' in toks[0]:
            return None
        if 'branch' in toks[1]:
            unit = toks[0]
            block = 'b' + unit[-2] if unit.endswith('a') \
                else 'b' + unit[-3] + '_' + unit[-1]
            if unit.startswith('res'):
                key = f'{block}.conv_{toks[1]}.weight'
            else:
                key = f'{block}.bn_{toks[1]}.{_MX_BN_PARAMS[toks[-1]]}'
        else:
            key = 'bn7.' + _MX_BN_PARAMS[toks[-1]]
    except (IndexError, KeyError):
        key = None
    if key is None or key not in _BACKBONE_KEYS:
        raise ValueError(f'MXNet parameter {name!r} is not a ResNet-38 '
                         'parameter' + (f' (maps to {key!r})' if key else ''))
    return key


def mxnet_params_to_psa(
    params: Mapping[str, np.ndarray],
    allow_unknown: bool = False,
    source: str = '<mxnet params>'
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Rename MXNet ResNet-38 arrays to psa keys (``convert_mxnet_to_torch``).

    Args:
        params (Mapping[str, ndarray]): name -> array, e.g. from
            :func:`~.mxnet_params.load_mxnet_params`.
        allow_unknown (bool): Drop unknown names instead of raising.
        source (str): Name used in errors.

    Returns:
        tuple[OrderedDict[str, Tensor], list[str]]: psa-keyed tensors and
        the dropped names (ImageNet classifier, and unknown names when
        allowed).
    """
    out, dropped, unknown = OrderedDict(), [], []
    for name, array in params.items():
        try:
            key = mxnet_key_to_psa(name)
        except ValueError:
            unknown.append(name)
            continue
        if key is None:
            dropped.append(name)
        else:
            out[key] = torch.from_numpy(np.ascontiguousarray(array))
    if unknown and not allow_unknown:
        raise unknown_keys_error(source, 'mxnet', unknown)
    return out, dropped + unknown


def load_psa_state_dict(
    path: str,
    allow_unknown: bool = False
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Load a psa torch checkpoint or the MXNet ``.params`` file, psa-keyed.

    Args:
        path (str): ``.pth`` (bare state dict or ``{'state_dict': ...}``)
            or MXNet ``.params`` (recognised by its magic number).
        allow_unknown (bool): For MXNet files, drop unknown names.

    Returns:
        tuple[OrderedDict[str, Tensor], list[str]]: State dict (``module.``
        stripped) and the MXNet names dropped while renaming (empty for
        torch files).
    """
    if is_mxnet_params(path):
        return mxnet_params_to_psa(
            load_mxnet_params(path), allow_unknown, source=path)
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    return unwrap_state_dict(checkpoint, path), []


def convert_checkpoint(src: str,
                       dst: str,
                       layout: str = 'auto',
                       allow_unknown: bool = False) -> ConversionReport:
    """Convert a psa / MXNet ResNet-38 checkpoint into an mmcyc checkpoint.

    The output is ``{'state_dict': ..., 'meta': ...}`` saved with
    ``torch.save``; ``mmengine.runner.load_checkpoint`` and
    ``init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='backbone.')``
    read it.

    Args:
        src (str): Source checkpoint.
        dst (str): Output path (parent folders are created).
        layout (str): ``'auto'`` or one of :data:`LAYOUTS`; an MXNet
            source is always ``'imagenet'``. Defaults to 'auto'.
        allow_unknown (bool): Drop unknown keys instead of raising.

    Returns:
        ConversionReport: What was converted, dropped and added.
    """
    state_dict, mx_dropped = load_psa_state_dict(src, allow_unknown)
    if is_mxnet_params(src):
        if layout not in ('auto', 'imagenet'):
            raise ValueError(f'{src} is an MXNet ImageNet file; its layout '
                             f"is 'imagenet', not {layout!r}")
        layout = 'imagenet'
    state_dict, report = convert_psa_state_dict(
        state_dict, layout, allow_unknown, source=src)
    report.dropped = mx_dropped + report.dropped
    save_converted(
        state_dict,
        report,
        src,
        dst,
        converter='tools/model_converters/psa2mmcyc.py',
        listed=('dropped', 'unknown'))
    return report


def load_checkpoint_strict(model: nn.Module,
                           filename: str,
                           map_location: str = 'cpu',
                           prefix: Optional[str] = None) -> dict:
    """Load a checkpoint, raising if any key or shape does not match.

    mmengine's ``load_checkpoint(strict=False)`` only logs mismatches; use
    this where a silent partial load would be a bug.

    Args:
        model (nn.Module): Model to load into.
        filename (str): Checkpoint (bare state dict or with ``state_dict``;
            ``module.`` is stripped).
        map_location (str): Passed to ``torch.load``. Defaults to 'cpu'.
        prefix (str, optional): Keep only keys starting with it and strip
            it (e.g. ``'backbone.'`` to load a backbone alone).

    Returns:
        dict: The loaded checkpoint.

    Raises:
        ValueError: Naming ``filename`` and listing missing keys,
            unexpected keys and shape mismatches.
    """
    checkpoint = torch.load(
        filename, map_location=map_location, weights_only=True)
    state_dict = unwrap_state_dict(checkpoint, filename)
    if prefix:
        state_dict = OrderedDict((k[len(prefix):], v)
                                 for k, v in state_dict.items()
                                 if k.startswith(prefix))
    check_state_dict(model, state_dict, filename)
    model.load_state_dict(state_dict, strict=False)
    return checkpoint
