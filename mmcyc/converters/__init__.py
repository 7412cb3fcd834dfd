# Copyright (c) mmcyc contributors. All rights reserved.
"""Checkpoint converters: AffinityNet (psa) and MXNet ResNet-38 weights to
mmcyc's key names (``tools/model_converters/psa2mmcyc.py`` is the CLI)."""
from .mxnet_params import is_mxnet_params, load_mxnet_params
from .psa_keys import (LAYOUTS, convert_checkpoint, convert_psa_state_dict,
                       load_checkpoint_strict)

__all__ = [
    'is_mxnet_params', 'load_mxnet_params', 'LAYOUTS', 'convert_checkpoint',
    'convert_psa_state_dict', 'load_checkpoint_strict'
]
