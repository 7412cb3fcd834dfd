# Copyright (c) mmcyc contributors. All rights reserved.
"""Map AffinityNet's (``jiwoon-ahn/psa``) VGG-16 checkpoints to mmcyc keys.

psa's VGG-16 weights come in three layouts, all with the caffe layer names
of ``network/vgg16d.py`` (``conv1_1.weight`` ... ``fc7.bias``), which
:class:`~mmcyc.models.backbones.VGG16d` keeps:

- ``imagenet``: the torch state dict of ``vgg16_20M.caffemodel`` made by
  psa's ``vgg16d.convert_caffe_to_torch`` (backbone only; the caffe file
  itself needs pycaffe and is not read here);
- ``cls``: a ``vgg16_cls.Net`` state dict (psa's published VGG classifier):
  backbone + ``fc8``;
- ``aff``: a ``vgg16_aff.Net`` state dict: backbone + ``f8_3``, ``f8_4``,
  ``f8_5`` with their GroupNorms ``gn8_3``, ``gn8_4``, ``gn8_5`` + ``f9``.

Backbone keys get the ``backbone.`` prefix; the heads become mmcyc's
``CAMClassifier`` (``cam_activation='sqrt_relu'``) and ``AffinityNet``
with ``AffinityEmbedHead(norm_cfg=dict(type='GN', num_groups=(8, 16,
32)))``. The chain is ``torch.load -> convert_psa_vgg16_state_dict ->
save_converted`` (:func:`convert_vgg16_checkpoint`; the renaming and
saving are :mod:`.key_mapping`'s, shared with the ResNet-38 converter);
:func:`~mmcyc.converters.psa_keys.load_checkpoint_strict` checks the result
against a model.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch

from .key_mapping import (ConversionReport, detect_head_layout,
                          rename_state_dict, save_converted)
from .psa_keys import HEAD_KEYS

__all__ = [
    'VGG16_HEAD_KEYS', 'VGG16_LAYOUTS', 'psa_vgg16_backbone_keys',
    'detect_vgg16_layout', 'convert_psa_vgg16_state_dict',
    'convert_vgg16_checkpoint'
]
_WEIGHTS = 'psa VGG-16'  # whose weights, as the errors name them

# psa head keys -> mmcyc names, per layout: ResNet-38's, and the GroupNorms
# gn8_3-gn8_5 after vgg16_aff.Net's 1x1 convs f8_3-f8_5.
VGG16_HEAD_KEYS: Dict[str, Dict[str, str]] = dict(
    HEAD_KEYS,
    aff=dict(
        HEAD_KEYS['aff'], **{
            f'gn8_{level + 3}.{name}': f'embed_head.norms.{level}.{name}'
            for level in range(3) for name in ('weight', 'bias')
        }))
VGG16_LAYOUTS = tuple(VGG16_HEAD_KEYS)
# The layers of psa's vgg16d.Net, each with a weight and a bias.
_LAYERS = ('conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2',
           'conv3_3', 'conv4_1', 'conv4_2', 'conv4_3', 'conv5_1', 'conv5_2',
           'conv5_3', 'fc6', 'fc7')


def psa_vgg16_backbone_keys() -> List[str]:
    """State-dict keys of psa's ``vgg16d.Net`` (= mmcyc ``VGG16d``).

    Returns:
        list[str]: Keys without prefix, in module order.
    """
    return [f'{layer}.{p}' for layer in _LAYERS for p in ('weight', 'bias')]


_BACKBONE_KEYS = frozenset(psa_vgg16_backbone_keys())


def detect_vgg16_layout(keys) -> str:
    """Guess the layout of a (``module.``-free) psa VGG-16 state dict.

    Returns:
        str: ``'cls'`` if ``fc8.weight`` is present, ``'aff'`` if any of
        psa's affinity-head keys is, ``'imagenet'`` otherwise.
    """
    return detect_head_layout(keys, VGG16_HEAD_KEYS, _WEIGHTS)


def convert_psa_vgg16_state_dict(
        state_dict: Mapping[str, torch.Tensor],
        layout: str = 'auto',
        allow_unknown: bool = False,
        source: str = '<state_dict>'
) -> Tuple['OrderedDict[str, torch.Tensor]', ConversionReport]:
    """Rename a psa VGG-16 state dict to mmcyc keys.

    Args:
        state_dict (Mapping[str, Tensor]): psa-keyed state dict (bare or
            ``{'state_dict': ...}``; a ``module.`` prefix is stripped).
        layout (str): ``'auto'`` or one of :data:`VGG16_LAYOUTS`.
            Defaults to 'auto'.
        allow_unknown (bool): Drop unknown keys instead of raising.
            Defaults to False.
        source (str): Name used in the report and errors.

    Returns:
        tuple[OrderedDict, ConversionReport]: mmcyc state dict and report
        (``absent`` lists the expected psa keys the source lacks).
    """
    return rename_state_dict(
        state_dict,
        layout,
        VGG16_HEAD_KEYS,
        _BACKBONE_KEYS,
        psa_vgg16_backbone_keys(),
        allow_unknown,
        source,
        weights=_WEIGHTS)


def convert_vgg16_checkpoint(src: str,
                             dst: str,
                             layout: str = 'auto',
                             allow_unknown: bool = False) -> ConversionReport:
    """Convert a psa VGG-16 checkpoint (``.pth``) into an mmcyc checkpoint.

    The output is ``{'state_dict': ..., 'meta': ...}``;
    ``init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='backbone.')``
    and ``load_from=dst`` read it.

    Args:
        src (str): psa checkpoint (bare state dict or with ``state_dict``).
        dst (str): Output path (parent folders are created).
        layout (str): ``'auto'`` or one of :data:`VGG16_LAYOUTS`.
        allow_unknown (bool): Drop unknown keys instead of raising.

    Returns:
        ConversionReport: What was converted and what is absent.
    """
    checkpoint = torch.load(src, map_location='cpu', weights_only=True)
    state_dict, report = convert_psa_vgg16_state_dict(
        checkpoint, layout, allow_unknown, source=src)
    save_converted(
        state_dict,
        report,
        src,
        dst,
        converter='tools/model_converters/psa_vgg2mmcyc.py')
    return report
