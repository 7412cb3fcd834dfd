# Copyright (c) mmcyc contributors. All rights reserved.
"""The feature map a model takes from any registered backbone."""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn


def feature_channels(backbone: nn.Module, feature_index: int,
                     in_channels: Optional[int] = None) -> int:
    """Channels of the backbone output a model uses.

    Args:
        backbone (nn.Module): A built backbone.
        feature_index (int): Which of its outputs is used.
        in_channels (int, optional): The configured value; returned as is
            when given.

    Returns:
        int: ``in_channels``, or ``backbone.out_channels[feature_index]``.

    Raises:
        ValueError: When neither is available (e.g. mmpretrain backbones have
            no ``out_channels``): set ``model.in_channels``.
    """
    if in_channels is not None:
        return in_channels
    out_channels = getattr(backbone, 'out_channels', None)
    if out_channels is None:
        raise ValueError(
            f'in_channels is not set and backbone {type(backbone).__name__} '
            f'has no `out_channels`; set model.in_channels to the channels '
            f'of its output {feature_index}')
    return list(out_channels)[feature_index]


def select_feature(feats: Union[torch.Tensor, Sequence[torch.Tensor]],
                   feature_index: int) -> torch.Tensor:
    """The ``feature_index``-th map of a backbone's output tuple.

    Returns:
        Tensor: shape (N, D, h, w).
    """
    if isinstance(feats, (list, tuple)):
        return feats[feature_index]
    return feats
