# Copyright (c) mmcyc contributors. All rights reserved.
"""mIoU of CAM pseudo masks as a function of the background score."""
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS


def sweep_confusion(cam: torch.Tensor, gt: torch.Tensor,
                    bg_scores: torch.Tensor, num_classes: int,
                    ignore_index: int = 255) -> torch.Tensor:
    """Confusion matrices of ``argmax([bg, cam])`` for every background score.

    All thresholds are evaluated in one batched ``bincount``.

    Args:
        cam (Tensor): Normalised CAM, shape (C, H, W).
        gt (Tensor): Ground-truth labels in [0, C] or ``ignore_index``,
            shape (H, W).
        bg_scores (Tensor): Background scores, shape (T,).
        num_classes (int): Number of labels including background (C + 1).
        ignore_index (int): Label ignored in the ground truth.

    Returns:
        Tensor: int64 confusion matrices, shape (T, num_classes, num_classes),
        indexed ``[t, gt, pred]``.
    """
    peak, arg = cam.max(dim=0)  # (H, W) each
    valid = gt != ignore_index
    peak, arg, gt = peak[valid], arg[valid] + 1, gt[valid].long()  # (P,)
    # pred_t = class if its score beats the background score, else 0
    pred = torch.where(peak[None] > bg_scores[:, None], arg[None],
                       torch.zeros_like(arg)[None])  # (T, P)
    t_index = torch.arange(len(bg_scores), device=cam.device)[:, None]
    flat = (t_index * num_classes + gt[None]) * num_classes + pred  # (T, P)
    counts = torch.bincount(
        flat.flatten(), minlength=len(bg_scores) * num_classes**2)
    return counts.view(len(bg_scores), num_classes, num_classes)


@METRICS.register_module()
class CAMThresholdSweepMetric(BaseMetric):
    """Pseudo-mask mIoU of ``pred_cam`` over a range of background scores.

    Reported next to (not instead of) ``IoUMetric`` at the fixed background
    score: choosing the threshold against the ground truth is an oracle, so
    the headline figure stays the fixed-score one.

    Args:
        bg_scores (Sequence[float]): Background scores to try. Defaults to
            0.05, 0.10, ..., 0.60.
        ignore_index (int): Ignored ground-truth label. Defaults to 255.
        prefix (str): Metric name prefix. Defaults to ``'sweep'``.
    """

    def __init__(self,
                 bg_scores: Sequence[float] = tuple(
                     np.round(np.arange(0.05, 0.61, 0.05), 2)),
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = 'sweep',
                 **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if len(bg_scores) == 0:
            raise ValueError('bg_scores must not be empty')
        self.bg_scores = [float(s) for s in bg_scores]
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        scores = torch.tensor(self.bg_scores)
        for sample in data_samples:
            cam = sample['pred_cam']['data'].float().cpu()  # (C, H, W)
            gt = sample['gt_sem_seg']['data'].squeeze(0).cpu()  # (H, W)
            self.results.append(
                sweep_confusion(cam, gt, scores.to(cam.device), num_classes,
                                self.ignore_index).numpy())

    def compute_metrics(self, results: list) -> Dict[str, float]:
        confusion = np.sum(results, axis=0).astype(np.float64)  # (T, K, K)
        intersect = np.diagonal(confusion, axis1=1, axis2=2)  # (T, K)
        union = confusion.sum(1) + confusion.sum(2) - intersect  # (T, K)
        # as mmseg's IoUMetric: classes with an empty union are left out
        iou = np.where(union > 0, intersect / np.maximum(union, 1), np.nan)
        miou = np.nanmean(iou, axis=1) * 100  # (T,)
        best = int(np.nanargmax(miou))
        metrics = OrderedDict()
        for score, value in zip(self.bg_scores, miou):
            metrics[f'mIoU@{score:.2f}'] = round(float(value), 2)
        metrics['best_mIoU'] = round(float(miou[best]), 2)
        metrics['best_bg_score'] = self.bg_scores[best]
        logger = MMLogger.get_current_instance()
        print_log(
            'background-score sweep (oracle, reported separately): ' +
            ', '.join(f'{s:.2f}: {v:.2f}' for s, v in zip(self.bg_scores, miou)),
            logger=logger)
        return metrics
