# Copyright (c) mmcyc contributors. All rights reserved.
"""SSENet: a CAM classifier trained with scale equivariant regularisation."""
import math
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from .cam_classifier import CAMClassifier

SampleList = List[SegDataSample]


@MODELS.register_module()
class SSENetClassifier(CAMClassifier):
    """CAMClassifier trained on two scales of each batch (SSENet).

    Wang et al., "Self-supervised Scale Equivariant Network for Weakly
    Supervised Semantic Segmentation", arXiv 1909.03714 (the paper's Table 1
    "SEENet" baseline), as its public code computes it
    (``YudeWang/SSENet-pytorch``: ``network/resnet38_cls_ser.py``,
    ``train_cls_ser.py``). Only training differs from
    :class:`CAMClassifier`: the modules, hence the checkpoint, are the same,
    and inference (``tensor`` / ``predict``) is inherited unchanged, so the
    CAMs are written in the one on-disk format every later stage reads.

    Call order::

        forward(mode='loss')    : raw_map(x), raw_map(resize(x, r))
                                  -> GAP of each -> loss_cls of each
                                     (weighted cls_loss_weights)
                                  -> loss_equivariance(raw_map(resize(x, r)),
                                                       raw_map(x), labels)
        raw_map                 : extract_feat -> dropout -> classifier at
                                  every position -> bilinear to input size
        forward(mode='tensor')  : as CAMClassifier
        forward(mode='predict') : as CAMClassifier

    Differences from the reference, all in what is shared with
    CAMClassifier: inference applies the ReLU before resizing each scale's
    map (the reference resizes first), and the rescaled input has the size
    ``floor(H r) x floor(W r)`` with coordinates mapped by the size ratio
    (the reference's ``scale_factor=r`` under the PyTorch of its time).

    Args:
        scale_factor (float): ``r``, the rescaling of the second pass.
            Defaults to 0.3 (the reference's ``branch_rate``).
        cls_loss_weights (Sequence[float]): Weights of ``loss_cls`` of the
            full and of the rescaled pass (on top of ``loss_cls``'s own
            ``loss_weight``). Defaults to (0.5, 0.5) (the reference).
        loss_equivariance (dict): Config of the equivariance loss. Defaults
            to ``ScaleEquivarianceLoss`` at weight 1 (the reference).
        **kwargs: The arguments of :class:`CAMClassifier`.
    """

    def __init__(self,
                 *,
                 scale_factor: float = 0.3,
                 cls_loss_weights: Sequence[float] = (0.5, 0.5),
                 loss_equivariance: dict = dict(type='ScaleEquivarianceLoss'),
                 **kwargs):
        super().__init__(**kwargs)
        if not 0 < scale_factor < 1:
            raise ValueError(
                f'scale_factor must be in (0, 1), got {scale_factor}')
        if len(cls_loss_weights) != 2 or min(cls_loss_weights) < 0:
            raise ValueError('cls_loss_weights must be two weights >= 0 (full '
                             f'pass, rescaled pass), got {cls_loss_weights}')
        self.scale_factor = scale_factor
        self.cls_loss_weights = tuple(float(w) for w in cls_loss_weights)
        self.loss_equivariance = MODELS.build(loss_equivariance)
        names = (self.loss_cls.loss_name, self.loss_cls.loss_name + '_s',
                 self.loss_equivariance.loss_name)
        if len(set(names)) != 3:
            raise ValueError(f'the loss names must differ, got {names}')

    def raw_map(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class scores at every position, before any ReLU, at input size.

        The reference network's training output: dropout, the 1x1
        classifier on the feature map, bilinear upsampling
        (``align_corners=False``) to the input's size.

        Args:
            inputs (Tensor): Normalised images, shape (N, 3, H, W).

        Returns:
            Tensor: Raw class map, shape (N, C, H, W).
        """
        feats = self.dropout(self.extract_feat(inputs))  # (N, D, h, w)
        raw = self.classifier(feats)  # (N, C, h, w)
        return F.interpolate(raw, size=inputs.shape[2:], mode='bilinear',
                             align_corners=False)

    def rescale(self, inputs: torch.Tensor) -> torch.Tensor:
        """Inputs (N, 3, H, W) -> (N, 3, floor(H r), floor(W r)), bilinear."""
        size = tuple(
            int(math.floor(s * self.scale_factor)) for s in inputs.shape[2:])
        if min(size) < 1:
            raise ValueError(f'input {tuple(inputs.shape[2:])} rescaled by '
                             f'{self.scale_factor} is empty')
        return F.interpolate(inputs, size=size, mode='bilinear',
                             align_corners=False)

    def loss(self, inputs: torch.Tensor,
             data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """Both passes' L_cls (Eq. 12), the equivariance loss, the accuracy.

        The logits are the spatial means of :meth:`raw_map` (the reference
        pools the upsampled map); ``cls_acc`` is the exact-match accuracy of
        the full pass.
        """
        labels = self._stack_labels(data_samples).to(inputs.device)
        cam = self.raw_map(inputs)  # (N, C, H, W)
        cam_s = self.raw_map(self.rescale(inputs))  # (N, C, Hr, Wr)
        logits = cam.mean(dim=(2, 3))  # (N, C)
        logits_s = cam_s.mean(dim=(2, 3))  # (N, C)
        w_full, w_scaled = self.cls_loss_weights
        name = self.loss_cls.loss_name
        losses = {
            name: w_full * self.loss_cls(logits, labels),
            name + '_s': w_scaled * self.loss_cls(logits_s, labels),
            self.loss_equivariance.loss_name:
            self.loss_equivariance(cam_s, cam, labels),
        }
        with torch.no_grad():
            correct = ((logits > 0) == (labels > 0.5)).float().mean()
        losses['cls_acc'] = correct
        return losses
