# Copyright (c) mmcyc contributors. All rights reserved.
"""``frozen_stages`` / ``norm_eval`` for the backbones: one way to freeze."""
from typing import Iterable

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def freeze(modules: Iterable[nn.Module]) -> None:
    """Put modules in eval mode and stop their parameters' gradients."""
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


def freeze_batch_norms(root: nn.Module) -> None:
    """:func:`freeze` every BatchNorm under ``root`` (``norm_eval``)."""
    freeze(m for m in root.modules() if isinstance(m, _BatchNorm))
