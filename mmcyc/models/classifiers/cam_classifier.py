# Copyright (c) mmcyc contributors. All rights reserved.
"""Image-level multi-label classifier whose 1x1 classifier gives CAMs."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmcyc.utils import checked_settings
from ..utils.backbone_features import feature_channels, select_feature
from ..utils.cam import (CAM_ACTIVATIONS, cam_to_mask, class_activation_map,
                         mask_cam_by_label, multi_scale_cam, normalize_cam)

SampleList = List[SegDataSample]


@MODELS.register_module()
class CAMClassifier(BaseModel):
    """Backbone -> Dropout2d -> GAP -> 1x1 conv (no bias) -> class logits.

    The classifier of stage 1 (paper Sect. 3.1, AffinityNet's
    ``resnet38_cls``). Any registered backbone returning a tuple of feature
    maps works (ResNet38, mmseg's ResNetV1c, mmpretrain's ResNet...).

    Call order::

        forward(mode='loss')    : extract_feat -> dropout -> GAP -> classifier
                                  -> loss_cls (Eq. 12)
        forward(mode='tensor')  : cam: extract_feat -> class_activation_map
                                  (Eq. 1 + cam_activation)
        forward(mode='predict') : [data_sample.written_cam (read back)] or
                                  multi_scale_cam (of cam) -> mask_cam_by_label
                                  -> normalize_cam (Eq. 2) -> cam_to_mask

    Args:
        backbone (dict): Backbone config.
        num_classes (int): Number of foreground classes. Defaults to 20.
        in_channels (int, optional): Channels of the feature map used. Taken
            from ``backbone.out_channels[feature_index]`` when None.
        feature_index (int): Which backbone output feeds the classifier.
            Defaults to -1 (the last one).
        dropout_ratio (float): Dropout2d before pooling. Defaults to 0.5.
        loss_cls (dict): Classification loss config.
        test_cfg (dict, optional): CAM inference settings: ``scales``
            (default the reference (1.0, 0.5, 1.5, 2.0)), ``flip`` (True),
            ``bg_score`` (0.2, paper), ``resize_mode`` ('bilinear'),
            ``label_source`` ('gt': the image-level label; 'pred': logits > 0
            when no label is given). The model reads and writes no file:
            ``CAMWriterHook`` writes the CAMs, and a CAM written before comes
            back with its sample (``written_cam``) and is returned as it is,
            which makes inference resumable (``tools/test.py --cam-dir`` sets
            both up).
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
        cam_activation (str): Applied to Eq. 1's scores by :meth:`cam`, so
            by every CAM this classifier gives (``mode='tensor'``, the
            multi-scale ``predict``, CyCSNet's CAM_A): ``'relu'`` (psa's
            ResNet-38) or ``'sqrt_relu'`` (``sqrt(relu(.))``, psa's VGG-16
            ``vgg16_cls``). Training (the logits) does not use it.
            Defaults to 'relu'.
    """

    def __init__(self,
                 backbone: dict,
                 num_classes: int = 20,
                 in_channels: Optional[int] = None,
                 feature_index: int = -1,
                 dropout_ratio: float = 0.5,
                 loss_cls: dict = dict(type='MultiLabelSoftMarginLoss'),
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 cam_activation: str = 'relu'):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if cam_activation not in CAM_ACTIVATIONS:
            raise ValueError(f'cam_activation must be one of '
                             f'{CAM_ACTIVATIONS}, got {cam_activation!r}')
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if not 0 <= dropout_ratio < 1:
            raise ValueError(
                f'dropout_ratio must be in [0, 1), got {dropout_ratio}')
        self.backbone = MODELS.build(backbone)
        in_channels = feature_channels(self.backbone, feature_index,
                                       in_channels)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feature_index = feature_index
        self.cam_activation = cam_activation
        self.dropout = nn.Dropout2d(dropout_ratio)
        self.classifier = nn.Conv2d(
            in_channels, num_classes, kernel_size=1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)
        self.loss_cls = MODELS.build(loss_cls)
        self.test_cfg = self._check_test_cfg(test_cfg or {})

    @staticmethod
    def _check_test_cfg(cfg: dict) -> dict:
        cfg = dict(cfg)
        if cfg.pop('out_dir', None) is not None:
            raise ValueError(
                'test_cfg.out_dir is no longer a model setting (the model '
                'writes no file): use custom_hooks=[dict(type=\'CAMWriterHook\''
                ', out_dir=...)], or tools/test.py --cam-dir DIR')
        cfg = checked_settings(
            dict(
                scales=(1.0, 0.5, 1.5, 2.0),
                flip=True,
                bg_score=0.2,
                resize_mode='bilinear',
                label_source='gt'), cfg)
        if len(cfg['scales']) == 0 or min(cfg['scales']) <= 0:
            raise ValueError('test_cfg.scales must be positive scales, got '
                             f'{cfg["scales"]}')
        if cfg['label_source'] not in ('gt', 'pred'):
            raise ValueError("test_cfg.label_source must be 'gt' or 'pred', "
                             f"got {cfg['label_source']!r}")
        return cfg

    # ------------------------------------------------------------------ #
    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return the classifier's feature map, shape (N, D, h, w)."""
        return select_feature(self.backbone(inputs), self.feature_index)

    def cam(self, inputs: torch.Tensor) -> torch.Tensor:
        """Eq. 1 + ``cam_activation`` for normalised inputs.

        The one place the classifier's CAM is computed: ``mode='tensor'``,
        :meth:`predict` (through ``multi_scale_cam``) and CyCSNet's CAM_A
        call it.

        Args:
            inputs (Tensor): Images, shape (N, 3, H, W).

        Returns:
            Tensor: Un-normalised CAMs, shape (N, C, h, w).
        """
        return class_activation_map(
            self.extract_feat(inputs), self.classifier.weight,
            self.cam_activation)

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Image-level class scores, shape (N, C)."""
        feats = self.dropout(self.extract_feat(inputs))
        pooled = F.adaptive_avg_pool2d(feats, 1)  # (N, D, 1, 1)
        return self.classifier(pooled).flatten(1)  # (N, C)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor') -> Union[Dict, SampleList, torch.Tensor]:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.cam(inputs)
        raise RuntimeError(f'Invalid mode "{mode}"; expected loss, predict or '
                           'tensor')

    @staticmethod
    def _stack_labels(data_samples: Optional[SampleList]) -> torch.Tensor:
        if not data_samples or 'gt_img_label' not in data_samples[0]:
            raise ValueError('training needs image-level labels: each data '
                             'sample must carry `gt_img_label` (use '
                             'PackImageLabelInputs in the pipeline)')
        return torch.stack([s.gt_img_label for s in data_samples])  # (N, C)

    def loss(self, inputs: torch.Tensor,
             data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """Multilabel soft-margin loss (Eq. 12) and the exact-match accuracy."""
        labels = self._stack_labels(data_samples).to(inputs.device)
        logits = self.logits(inputs)
        losses = {self.loss_cls.loss_name: self.loss_cls(logits, labels)}
        with torch.no_grad():
            correct = ((logits > 0) == (labels > 0.5)).float().mean()
        losses['cls_acc'] = correct
        return losses

    # ------------------------------------------------------------------ #
    def _image_labels(self, inputs: torch.Tensor,
                      data_sample: SegDataSample) -> torch.Tensor:
        if 'gt_img_label' in data_sample and \
                self.test_cfg['label_source'] == 'gt':
            return data_sample.gt_img_label.to(inputs.device).float()
        return (self.logits(inputs) > 0).float()[0]

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[SampleList] = None) -> SampleList:
        """Multi-scale + flip CAMs (Eq. 1-2) and their masks, per image.

        Each returned sample carries ``pred_cam`` (PixelData, (C, H, W)
        normalised CAM at the original size, zero for absent classes),
        ``pred_cam_labels`` ((C, ) the classes it was made for) and
        ``pred_sem_seg`` (PixelData, (1, H, W), background score
        ``test_cfg.bg_score`` in front of the class maps, argmax), so mmseg's
        ``IoUMetric`` scores the CAMs as pseudo masks. A sample carrying
        ``written_cam`` (PixelData (C, H, W), a CAM written by an earlier
        run) gets it back as ``pred_cam`` instead of a new one.
        """
        if data_samples is None:
            data_samples = [
                SegDataSample(metainfo=dict(
                    img_shape=inputs.shape[2:], ori_shape=inputs.shape[2:]))
                for _ in range(inputs.shape[0])
            ]
        cfg = self.test_cfg
        for i, sample in enumerate(data_samples):
            if 'written_cam' in sample:  # read back: not computed again
                cam = sample.written_cam.data.to(inputs.device).float()
                labels = (cam.flatten(1).amax(dim=1) > 0).float()
            else:
                height, width = sample.metainfo['img_shape'][:2]
                image = inputs[i:i + 1, :, :height, :width]  # drop padding
                labels = self._image_labels(image, sample)
                cam = multi_scale_cam(
                    self.cam, image, scales=cfg['scales'], flip=cfg['flip'],
                    resize_mode=cfg['resize_mode'])  # (1, C, H, W)
                ori_shape = tuple(sample.metainfo.get('ori_shape',
                                                      (height, width))[:2])
                if ori_shape != (height, width):
                    cam = F.interpolate(cam, size=ori_shape, mode='bilinear',
                                        align_corners=False)
                cam = normalize_cam(mask_cam_by_label(cam, labels[None]))[0]
            sample.pred_cam_labels = labels  # (C, )
            mask = cam_to_mask(cam[None], cfg['bg_score'])  # (1, H, W)
            sample.pred_cam = PixelData(data=cam)
            sample.pred_sem_seg = PixelData(data=mask)
        return data_samples

    def _forward(self, inputs: torch.Tensor, data_samples=None):
        return self.cam(inputs)
