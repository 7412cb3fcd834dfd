# Copyright (c) mmcyc contributors. All rights reserved.
"""mmseg's FCN head whose logged training accuracy is cheap on a CPU."""
from typing import List

import torch
import torch.nn as nn
from mmseg.models.decode_heads import FCNHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from ..losses.pixel_accuracy import pixel_accuracy
from ..utils.separable_resize import bilinear_resize


@MODELS.register_module()
class FastAccuracyFCNHead(FCNHead):
    """:class:`mmseg.models.decode_heads.FCNHead`, its ``acc_seg`` from a max.

    Everything is mmseg's ``FCNHead`` (layers, forward, losses, predictions,
    weights and their names) but the training-log entry ``acc_seg``, which
    :func:`~mmcyc.models.losses.pixel_accuracy` computes with ``max``
    instead of ``topk`` over the classes: the same value, and the losses and
    gradients are untouched, so a training gives the same weights with
    either head. On the embedded default (stage 5, FCN with an auxiliary
    head, batch 8 at 96 px, one thread) mmseg's ``topk`` accuracy was about
    a quarter of each iteration (README). Configs swap it in by type:
    ``decode_head=dict(type='FastAccuracyFCNHead', ...)``.

    Args:
        upsample_by_matmul (bool): Bring the logits to the label map's size
            for the loss with :func:`~mmcyc.models.utils.bilinear_resize`
            (two matrix products, float32) instead of mmseg's ``resize``:
            the same map up to float rounding (about 5e-7), so the losses
            and gradients differ at that level and a training's floats
            drift from the stock head's. Faster on a CPU for small logits
            (``benchmarks/bench_seg_step.py``); predictions are untouched.
            Defaults to False (mmseg's ``resize``).
        **kwargs: ``FCNHead``'s arguments.
    """

    def __init__(self, upsample_by_matmul: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.upsample_by_matmul = upsample_by_matmul

    def loss_by_feat(self, seg_logits: torch.Tensor,
                     batch_data_samples: List) -> dict:
        """mmseg 1.2's ``BaseDecodeHead.loss_by_feat``, accuracy replaced
        (and the upsampling, with ``upsample_by_matmul``).

        Args:
            seg_logits (Tensor): The head's output, shape (N, C, h, w).
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: Each loss of ``loss_decode`` by its name, and
            ``acc_seg``.
        """
        seg_label = self._stack_batch_gt(batch_data_samples)
        if self.upsample_by_matmul:
            seg_logits = bilinear_resize(seg_logits, seg_label.shape[2:],
                                         self.align_corners)
        else:
            seg_logits = resize(
                input=seg_logits,
                size=seg_label.shape[2:],
                mode='bilinear',
                align_corners=self.align_corners)
        seg_weight = None if self.sampler is None else self.sampler.sample(
            seg_logits, seg_label)
        seg_label = seg_label.squeeze(1)
        losses_decode = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        loss = dict()
        for loss_decode in losses_decode:
            value = loss_decode(
                seg_logits,
                seg_label,
                weight=seg_weight,
                ignore_index=self.ignore_index)
            if loss_decode.loss_name in loss:
                loss[loss_decode.loss_name] += value
            else:
                loss[loss_decode.loss_name] = value
        loss['acc_seg'] = pixel_accuracy(
            seg_logits, seg_label, ignore_index=self.ignore_index)
        return loss
