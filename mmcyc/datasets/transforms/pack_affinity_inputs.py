# Copyright (c) mmcyc contributors. All rights reserved.
"""Pack an image with its AffinityNet label map (stage 4)."""
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS

from mmcyc.models.utils.affinity_labels import (IGNORE_INDEX,
                                                confident_label_map)


@TRANSFORMS.register_module()
class PackAffinityInputs(PackSegInputs):
    """:class:`PackSegInputs` plus the confident label map of AffinityNet.

    The (cropped, flipped) score stacks of :class:`LoadAffinityScores` are
    average-pooled by ``stride`` and turned into a label map (psa
    ``VOC12AffDataset``: confident foreground where the low-alpha argmax is
    a class, background where the high-alpha argmax is background, the rest
    and the positions without any score ignored), packed as
    ``data_sample.gt_aff_label``: PixelData (1, ceil(H / stride),
    ceil(W / stride)), int64, 0 background, ``c + 1`` class c,
    ``ignore_index`` ignored. ``AffinityNet`` pads it with ``ignore_index``
    to the embedding's size (psa's zero-filled crop gives the same).

    Required keys: ``aff_scores``, ``aff_score_labels`` (and what
    :class:`PackSegInputs` packs). Added keys: ``inputs``, ``data_samples``.

    Args:
        stride (int): Output stride of the embedding. Defaults to 8.
        ignore_index (int): Defaults to 255.
        **kwargs: Passed to :class:`PackSegInputs` (``meta_keys``).
    """

    def __init__(self, stride: int = 8, ignore_index: int = IGNORE_INDEX,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f'stride must be an int >= 1, got {stride!r}')
        self.stride = stride
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        if 'aff_scores' not in results:
            raise KeyError(
                f'PackAffinityInputs: results of {results.get("img_path")} '
                'have no "aff_scores"; put LoadAffinityScores in the '
                'pipeline')
        scores = torch.from_numpy(
            np.ascontiguousarray(results['aff_scores'])).permute(2, 0, 1)
        low, high = scores.chunk(2)  # (K + 1, H, W) each
        label = confident_label_map(
            low, high, torch.as_tensor(results['aff_score_labels']),
            self.stride, self.ignore_index)  # (h, w)
        packed = super().transform(results)
        packed['data_samples'].gt_aff_label = PixelData(data=label[None])
        return packed

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(stride={self.stride}, '
                f'ignore_index={self.ignore_index}, '
                f'meta_keys={self.meta_keys})')
