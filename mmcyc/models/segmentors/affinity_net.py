# Copyright (c) mmcyc contributors. All rights reserved.
"""AffinityNet: affinity embedding trained on CAM-derived labels (stage 4)."""
import copy
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmcyc.utils import checked_settings
# Imported for their registration: the default configs build them by name.
from ..heads.affinity_embed_head import AffinityEmbedHead  # noqa: F401
from ..postprocessors.affinity_rw_postprocessor import \
    AffinityRWPostprocessor  # noqa: F401
from ..utils.affinity_labels import pool_scores

SampleList = List[SegDataSample]


@MODELS.register_module()
class AffinityNet(BaseModel):
    """ResNet-38 features -> affinity embedding; random walk on CAMs.

    Ahn and Kwak, "Learning Pixel-level Semantic Affinity with Image-level
    Supervision" (CVPR 2018, https://arxiv.org/abs/1803.10464), psa's
    ``network/resnet38_aff.py``, ``train_aff.py`` and ``infer_aff.py``;
    CyCSNet's stage 4. The module names (``backbone``, ``embed_head.projs``,
    ``embed_head.fuse``) fit psa's ``res38_aff.pth`` after
    ``tools/model_converters/psa2mmcyc.py``.

    Call order::

        forward(mode='tensor')  : backbone -> embed_head -> f (N, D, h, w)
        forward(mode='loss')    : backbone -> embed_head
                                  -> embed_head.loss_by_feat(f, gt_aff_label)
                                  -> {loss_bg, loss_fg, loss_neg}
        forward(mode='predict') : per image: data_sample.written_sem_seg
                                  (read back) or data_sample.gt_cam
                                  -> propagate_cam: bg (1 - max)^bg_alpha,
                                     pad to a multiple of 8, pool by 8,
                                     f on the padded image, rw(f, scores),
                                     upsample, crop, argmax -> pred_sem_seg

    Training samples carry ``gt_aff_label``: a PixelData (1, h, w) label
    map at the embedding's stride (0 background, ``c + 1`` class c, 255
    ignored), e.g. from :func:`~mmcyc.models.utils.affinity_labels.
    cam_to_affinity_label` after the joint crop / flip.

    Args:
        backbone (dict): Backbone returning the levels of ``embed_head``
            (e.g. ResNet38 with ``out_indices=(0, 1, 3)``; its
            ``widen_factor`` sets the width).
        embed_head (dict): ``AffinityEmbedHead`` config; its
            ``in_channels`` default to ``backbone.out_channels``.
        num_classes (int): Foreground classes. Defaults to 20.
        test_cfg (dict, optional): Inference settings: ``bg_alpha`` (16,
            psa ``--alpha``), ``stride`` (8, the embedding's stride), ``rw``
            (the ``AffinityRWPostprocessor`` config; psa's radius 5, beta 8,
            256 steps by default). The model reads no file: the CAM to walk
            comes with each sample (``gt_cam``, put there by the test
            pipeline's ``LoadCAMFromFile``), and a pseudo mask an earlier run
            wrote (``written_sem_seg``, from ``LoadPseudoMask``) is returned
            as it is, so an interrupted walk resumes.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 embed_head: dict,
                 num_classes: int = 20,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f'num_classes must be an int >= 1, got {num_classes!r}')
        self.backbone = MODELS.build(backbone)
        embed_head = copy.deepcopy(dict(embed_head))
        if 'in_channels' not in embed_head:
            out_channels = getattr(self.backbone, 'out_channels', None)
            if out_channels is None:
                raise ValueError(
                    f'embed_head.in_channels is not set and backbone '
                    f'{type(self.backbone).__name__} has no `out_channels`')
            embed_head['in_channels'] = tuple(out_channels)
        self.embed_head = MODELS.build(embed_head)
        self.num_classes = num_classes
        self.test_cfg = self._check_test_cfg(test_cfg or {})
        self.rw = MODELS.build(self.test_cfg['rw'])

    @staticmethod
    def _check_test_cfg(cfg: dict) -> dict:
        moved = sorted({'cam_dir', 'mask_dir'} & set(cfg))
        if moved:
            raise ValueError(
                f'test_cfg.{moved[0]} is no longer a model setting (the model '
                'reads no file): put dict(type=\'LoadCAMFromFile\', cam_dir='
                '...) and dict(type=\'LoadPseudoMask\') in the test pipeline '
                '(configs/_base_/models/aff_resnet38.py); tools/test.py '
                '--pseudo-mask-dir sets the latter')
        cfg = checked_settings(
            dict(
                bg_alpha=16.0,
                stride=8,
                rw=dict(type='AffinityRWPostprocessor')), cfg)
        if not cfg['bg_alpha'] > 0:
            raise ValueError(
                f'test_cfg.bg_alpha must be > 0, got {cfg["bg_alpha"]!r}')
        if not isinstance(cfg['stride'], int) or cfg['stride'] < 1:
            raise ValueError(
                f'test_cfg.stride must be an int >= 1, got {cfg["stride"]!r}')
        return cfg

    # ------------------------------------------------------------------ #
    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """The affinity embedding f of (N, 3, H, W) images, (N, D, h, w)."""
        return self.embed_head(self.backbone(inputs))

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor') -> Union[Dict, SampleList, torch.Tensor]:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'Invalid mode "{mode}"; expected loss, predict or '
                           'tensor')

    def _stack_aff_labels(self, data_samples: Optional[SampleList],
                          size: torch.Size) -> torch.Tensor:
        """(N, h, w) label maps, padded with the ignore value to ``size``."""
        if not data_samples or 'gt_aff_label' not in data_samples[0]:
            raise ValueError(
                'training needs affinity labels: each data sample must carry '
                '`gt_aff_label` (PixelData (1, h, w) at the embedding stride, '
                '255 = ignored)')
        ignore = self.embed_head.ignore_index
        labels = []
        for sample in data_samples:
            label = sample.gt_aff_label.data
            label = label.reshape(label.shape[-2:]).long()  # (h, w)
            pad_h = size[0] - label.shape[0]
            pad_w = size[1] - label.shape[1]
            if pad_h < 0 or pad_w < 0:
                raise ValueError(
                    f'gt_aff_label of size {tuple(label.shape)} is larger '
                    f'than the embedding ({tuple(size)}); it must be at the '
                    'embedding stride')
            labels.append(F.pad(label, (0, pad_w, 0, pad_h), value=ignore))
        return torch.stack(labels)  # (N, h, w)

    def loss(self, inputs: torch.Tensor,
             data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """The affinity loss: ``loss_bg``, ``loss_fg``, ``loss_neg``."""
        embedding = self.extract_feat(inputs)  # (N, D, h, w)
        labels = self._stack_aff_labels(data_samples, embedding.shape[2:])
        return self.embed_head.loss_by_feat(embedding,
                                            labels.to(embedding.device))

    # ------------------------------------------------------------------ #
    @torch.no_grad()
    def propagate_cam(self, image: torch.Tensor,
                      cam: torch.Tensor) -> torch.Tensor:
        """psa's ``infer_aff.py`` for one image: the random-walk scores.

        Args:
            image (Tensor): Normalised image, shape (1, 3, H, W).
            cam (Tensor): Normalised CAM, zero for absent classes, shape
                (num_classes, H, W).

        Returns:
            Tensor: Scores after the walk, background first, upsampled to
            the image, shape (num_classes + 1, H, W); their argmax is the
            pseudo mask.
        """
        height, width = image.shape[2:]
        if tuple(cam.shape) != (self.num_classes, height, width):
            raise ValueError(
                f'cam of shape {tuple(cam.shape)} does not fit the image '
                f'{tuple(image.shape)}: expected ({self.num_classes}, '
                f'{height}, {width})')
        stride = self.test_cfg['stride']
        cam = cam.to(image.device).float()
        bg = (1 - cam.amax(dim=0, keepdim=True)).clamp(min=0).pow(
            self.test_cfg['bg_alpha'])  # (1, H, W)
        scores = pool_scores(torch.cat([bg, cam]), stride)  # (C + 1, h, w)
        pad_h, pad_w = -height % stride, -width % stride
        embedding = self.extract_feat(F.pad(image, (0, pad_w, 0, pad_h)))
        if tuple(embedding.shape[2:]) != tuple(scores.shape[1:]):
            raise ValueError(
                f'the embedding ({tuple(embedding.shape[2:])}) is not at '
                f'stride {stride} of the padded image; set test_cfg.stride')
        walked = self.rw(embedding, scores[None])  # (1, C + 1, h, w)
        walked = F.interpolate(
            walked, size=(height + pad_h, width + pad_w), mode='bilinear',
            align_corners=False)
        return walked[0, :, :height, :width]

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[SampleList] = None) -> SampleList:
        """Random-walk pseudo masks of the CAMs that come with the samples.

        Each sample needs ``gt_cam`` (PixelData (num_classes, H, W), the
        normalised CAM at the image size: ``LoadCAMFromFile`` in the test
        pipeline) unless it carries ``written_sem_seg`` (a mask written by
        an earlier run, ``LoadPseudoMask``), which is returned unchanged.
        Each returned sample carries ``pred_sem_seg`` (PixelData (1, H, W),
        0 background, ``c + 1`` class c) at ``ori_shape``, so mmseg's
        ``IoUMetric`` scores the pseudo masks.
        """
        if not data_samples:
            raise ValueError('predict needs data samples carrying the CAM to '
                             'walk (gt_cam, from LoadCAMFromFile)')
        for i, sample in enumerate(data_samples):
            if 'written_sem_seg' not in sample and 'gt_cam' not in sample:
                raise ValueError(
                    f'no CAM to walk for {sample.metainfo.get("img_path")}: '
                    'add dict(type=\'LoadCAMFromFile\', cam_dir=...) to the '
                    'test pipeline, right after the image is loaded')
            height, width = sample.metainfo['img_shape'][:2]
            ori_shape = tuple(sample.metainfo.get('ori_shape',
                                                  (height, width))[:2])
            if 'written_sem_seg' in sample:
                written = sample.written_sem_seg.data  # (1, H, W)
                if tuple(written.shape[1:]) != ori_shape:
                    raise ValueError(
                        f'written mask of {sample.metainfo["img_path"]} has '
                        f'size {tuple(written.shape[1:])}, expected '
                        f'{ori_shape}')
                sample.pred_sem_seg = PixelData(
                    data=written.to(inputs.device))
                continue
            cam = sample.gt_cam.data.to(inputs.device)  # (C, h0, w0)
            if cam.shape[0] != self.num_classes:
                raise ValueError(
                    f'the CAM of {sample.metainfo.get("img_path")} has '
                    f'{cam.shape[0]} classes, expected {self.num_classes}')
            if tuple(cam.shape[1:]) != (height, width):
                cam = F.interpolate(
                    cam[None], size=(height, width), mode='bilinear',
                    align_corners=False)[0]
            scores = self.propagate_cam(inputs[i:i + 1, :, :height, :width],
                                        cam)  # (C + 1, H, W)
            if ori_shape != (height, width):
                scores = F.interpolate(
                    scores[None], size=ori_shape, mode='bilinear',
                    align_corners=False)[0]
            sample.pred_sem_seg = PixelData(
                data=scores.argmax(dim=0, keepdim=True))  # (1, H, W)
        return data_samples

    def _forward(self, inputs: torch.Tensor, data_samples=None):
        return self.extract_feat(inputs)
