# Copyright (c) mmcyc contributors. All rights reserved.
"""Collate of image pairs into one batch for stock data preprocessors."""
from typing import Dict, List, Sequence

from mmengine.dataset import pseudo_collate
from mmengine.registry import FUNCTIONS


@FUNCTIONS.register_module()
def pair_collate(data_batch: Sequence[Dict[str, dict]]) -> Dict[str, List]:
    """Collate N pairs into one batch of 2N images, A's first.

    Each item is ``dict(a=packed_A, b=packed_B)`` from
    :class:`PairedVOCDataset`. The batch is::

        dict(inputs=[a_1, ..., a_N, b_1, ..., b_N],          # (3, H, W) each
             data_samples=[A_1, ..., A_N, B_1, ..., B_N])    # SegDataSample

    so ``SegDataPreProcessor`` stacks it unchanged into a (2N, 3, H, W)
    tensor; the model takes rows ``[:N]`` as A and ``[N:]`` as B, pair ``k``
    being rows ``k`` and ``N + k``. Every data sample carries
    ``gt_img_label`` and ``gt_shared_label``.

    Config: ``collate_fn=dict(type='pair_collate')``.

    Args:
        data_batch (Sequence[dict]): N items ``dict(a=..., b=...)``.

    Returns:
        dict: ``inputs`` and ``data_samples``, lists of length 2N.
    """
    if not data_batch:
        raise ValueError('pair_collate: empty batch')
    bad = next((d for d in data_batch
                if not isinstance(d, dict) or set(d) != {'a', 'b'}), None)
    if bad is not None:
        raise TypeError(
            'pair_collate expects items dict(a=..., b=...) from '
            f'PairedVOCDataset, got {type(bad).__name__} '
            f'{sorted(bad) if isinstance(bad, dict) else ""}')
    return pseudo_collate([d['a'] for d in data_batch] +
                          [d['b'] for d in data_batch])
