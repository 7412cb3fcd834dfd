# Copyright (c) mmcyc contributors. All rights reserved.
"""F's feature map of one loaded image, as stage 3 and the analyses use it."""
from typing import Tuple

import torch
import torch.nn as nn
from mmseg.structures import SegDataSample


@torch.no_grad()
def forward_features(model: nn.Module,
                     data: dict) -> Tuple[torch.Tensor, SegDataSample]:
    """F's features of one image batch of size 1 (as ``pseudo_collate``
    makes it), normalised by the model's data preprocessor at scale 1.

    Returns:
        tuple[Tensor, SegDataSample]: The feature map, shape (D, h, w), and
        the image's data sample.
    """
    data = model.data_preprocessor(data, False)
    return model(data['inputs'], mode='tensor')[0], data['data_samples'][0]
