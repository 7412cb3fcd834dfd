# Copyright (c) mmcyc contributors. All rights reserved.
"""Checkpoint converters: AffinityNet (psa) and MXNet ResNet-38 weights and
psa's VGG-16 weights to mmcyc's key names (the CLIs are
``tools/model_converters/psa2mmcyc.py`` and ``psa_vgg2mmcyc.py``, both on
:mod:`.cli`; the renaming and saving they share is :mod:`.key_mapping`)."""
from .key_mapping import ConversionReport
from .mxnet_params import is_mxnet_params, load_mxnet_params
from .psa_keys import (LAYOUTS, convert_checkpoint, convert_psa_state_dict,
                       load_checkpoint_strict)
from .psa_vgg16_keys import (VGG16_LAYOUTS, convert_psa_vgg16_state_dict,
                             convert_vgg16_checkpoint)

__all__ = [
    'is_mxnet_params', 'load_mxnet_params', 'LAYOUTS', 'convert_checkpoint',
    'convert_psa_state_dict', 'load_checkpoint_strict', 'VGG16_LAYOUTS',
    'convert_psa_vgg16_state_dict', 'convert_vgg16_checkpoint',
    'ConversionReport'
]
