# Copyright (c) mmcyc contributors. All rights reserved.
"""CyCSNet: the network F trained with cycle consistency (paper Alg. 1)."""
import copy
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmcyc.utils.state_dict_check import check_state_dict, unwrap_state_dict
from ..utils.backbone_features import feature_channels, select_feature
from ..utils.cam import cam_to_grid, mask_cam_by_label, normalize_cam
from ..utils.cycle_views import crop_images, draw_offsets, opposite_corners

SampleList = List[SegDataSample]

CAM_SOURCES = ('classifier', 'disk')


def fit_to_size(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Zero-pad or crop maps at the bottom / right to ``size``.

    ``SegDataPreProcessor`` pads each image at the bottom and right to the
    batch's input size; this puts a map of the unpadded image into the same
    frame (padding is zero: no activation there).

    Args:
        maps (Tensor): Maps of one image, shape (C, H, W).
        size (Sequence[int]): Target (H', W').

    Returns:
        Tensor: Shape (C, H', W'); ``maps[:, :H', :W']`` in the top-left
        corner, zeros elsewhere.
    """
    height, width = size
    maps = maps[:, :height, :width]
    return F.pad(maps, (0, width - maps.shape[2], 0, height - maps.shape[1]))


def read_classifier_state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    """C's checkpoint as a state dict (``module.`` stripped).

    Args:
        checkpoint (str): A CAM classifier checkpoint (mmcyc, i.e. with its
            training ``meta`` and message hub, or converted).

    Returns:
        dict[str, Tensor]: The classifier's state dict.
    """
    loaded = torch.load(checkpoint, map_location='cpu', weights_only=False)
    return unwrap_state_dict(loaded, checkpoint)


def load_classifier(classifier: nn.Module,
                    state_dict: Mapping[str, torch.Tensor],
                    checkpoint: str) -> None:
    """Load the frozen classifier C, every key and shape matching.

    Args:
        classifier (nn.Module): C, built from ``cam_classifier``.
        state_dict (Mapping[str, Tensor]): C's checkpoint
            (:func:`read_classifier_state_dict`).
        checkpoint (str): Its path, named in the error.

    Raises:
        ValueError: Naming the checkpoint and the first missing keys,
            unexpected keys and shape mismatches (both shapes).
    """
    check_state_dict(classifier, state_dict,
                     f'cam_classifier_checkpoint {checkpoint}',
                     'the cam_classifier config')
    classifier.load_state_dict(state_dict, strict=False)


def load_backbone_from_classifier(backbone: nn.Module,
                                  state_dict: Mapping[str, torch.Tensor],
                                  checkpoint: str,
                                  prefix: str = 'backbone.') -> List[str]:
    """Initialise F's backbone with the classifier's backbone weights.

    F is the classifier's network without its last block, so every key of F
    must be in the checkpoint; the classifier's extra blocks (e.g. ResNet-38's
    ``b7`` and ``bn7``) are left out.

    Args:
        backbone (nn.Module): F's backbone.
        state_dict (Mapping[str, Tensor]): A CAM classifier's state dict
            (:func:`read_classifier_state_dict`).
        checkpoint (str): Its path, named in the error.
        prefix (str): Prefix of the backbone keys in the checkpoint.

    Returns:
        list[str]: The checkpoint keys that F does not use.

    Raises:
        ValueError: Naming the checkpoint when F's keys are missing from it or
            their shapes differ (a classifier of another architecture).
    """
    state_dict = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    check_state_dict(
        backbone, state_dict, f'classifier checkpoint {checkpoint}',
        f'the CyCSNet backbone {type(backbone).__name__}',
        allow_unexpected=True,
        hint='; expected a CAM classifier of the same architecture (keys '
        f'"{prefix}*")')
    own = backbone.state_dict()
    backbone.load_state_dict(
        {k: v for k, v in state_dict.items() if k in own}, strict=False)
    return sorted(set(state_dict) - set(own))


def classifier_model_cfg(cam_classifier: dict) -> dict:
    """The model config of C: ``cam_classifier`` less what C does not use.

    Its data preprocessor and the ``init_cfg`` of C and of its backbone are
    dropped: C's weights come from ``cam_classifier_checkpoint``.
    """
    cfg = copy.deepcopy(dict(cam_classifier))
    cfg.pop('data_preprocessor', None)
    cfg.pop('init_cfg', None)
    cfg.get('backbone', {}).pop('init_cfg', None)
    return cfg


@MODELS.register_module()
class CyCSNet(BaseModel):
    """Network F trained on image pairs with L_cyc + lambda L_cls (Eq. 13).

    F is the classifier's backbone without its last block (ResNet-38 through
    ``b6``, 2048 channels at stride 8), initialised from the trained
    classifier C (whose checkpoint :meth:`init_weights` reads), plus a
    classification branch (Dropout2d -> GAP -> 1x1 conv) that keeps L_cls
    (Eq. 12). CAM_A comes from C itself, frozen (eval mode, no gradient),
    with ``cam_source='classifier'``; or, with ``cam_source='disk'``, from
    the CAMs that stage 1 wrote for every image, which ``LoadCAMFromFile``
    reads and the pipeline crops and flips with the image
    (``data_sample.gt_cam``), so C is never run.

    A batch holds N pairs as ``inputs = [A_1..A_N, B_1..B_N]`` with matching
    ``data_samples`` (see ``pair_collate``); every sample carries
    ``gt_img_label`` and ``gt_shared_label``.

    Call order (``mode='loss'``)::

        backbone(A and B)                  -> F_A, F_B   (N, D, h, w)
        cam_source='classifier':
            cam_classifier.cam(A) (no grad)          (N, C, h', w')
        cam_source='disk':
            A's gt_cam -> fit_to_size(input size)    (N, C, H, W)
        -> cam_to_grid (h, w) -> mask_cam_by_label
            -> normalize_cam (Eq. 2)       -> CAM_A      (N, C, h, w)
        head.loss(F_A, F_B, CAM_A, shared) -> loss_cyc (Eq. 3-8, 10-11) and
                                              the DCFS statistics
        (return_shift = m > 0: A, B and a second crop A' of A, each cropped
         by m cells, go through the backbone together; A's two crops lie at
         opposite corners of the offsets {0..m}^2, B's at a drawn offset;
         the cycle starts in the first crop of A and returns to F_A'; see
         ``cycle_views``)
        cls branch(F_A and F_B)            -> loss_cls x lambda (Eq. 12-13)

    ``mode='tensor'`` returns F's feature map (N, D, h, w), the input of CAM
    refinement (stage 3).

    Args:
        backbone (dict): F's backbone (e.g. ResNet38 with ``with_b7=False``,
            ``out_indices=(2, )``).
        head (dict): ``CycleConsistencyHead`` config.
        cam_classifier (dict, optional): The model config of the trained
            classifier C, e.g. the stage-1 config's ``model`` given with
            ``{{_base_.model}}`` (its data preprocessor and ``init_cfg`` are
            dropped). C is built here, randomly initialised; its weights are
            read from ``cam_classifier_checkpoint`` by :meth:`init_weights`.
            A config file path is refused (building reads no file).
            Required with ``cam_source='classifier'``. With ``'disk'`` it
            may be None: C is then not built (saving its memory), and
            :meth:`init_weights` initialises F straight from the
            ``backbone.*`` keys of ``cam_classifier_checkpoint``; if given,
            C is built and loaded as usual (``cam_a`` stays available) but
            never run by ``loss``.
        cam_classifier_checkpoint (str, optional): C's checkpoint, read by
            :meth:`init_weights` (which the Runner calls before training),
            never by ``__init__``. It also initialises F's backbone unless
            ``init_from_classifier`` is False. None leaves C (and F)
            randomly initialised (tests, or a full CyCSNet checkpoint loaded
            afterwards).
        init_from_classifier (bool): Let :meth:`init_weights` initialise F's
            backbone from C's checkpoint. Defaults to True.
        cam_source (str): Where CAM_A comes from: ``'classifier'`` (run C on
            A, the default) or ``'disk'`` (``data_sample.gt_cam`` of A, from
            ``LoadCAMFromFile`` in the train pipeline). Disk CAMs are
            zero-padded to the batch's input size, as the images are, since
            ``SegDataPreProcessor`` pads only ``gt_sem_seg``.
        num_classes (int): Foreground classes. Defaults to 20.
        in_channels (int, optional): Channels of F's feature map; taken from
            ``backbone.out_channels`` when None.
        feature_index (int): Which backbone output is F. Defaults to -1.
        dropout_ratio (float): Dropout2d of the classification branch.
        loss_cls (dict): L_cls config; its ``loss_weight`` is lambda (0.1).
        return_shift (int): m, in cells: the cycle starts in one crop of A
            and returns to another offset by (+-m, +-m) cells
            (:mod:`~mmcyc.models.utils.cycle_views`), both ``m *
            feature_stride`` pixels smaller than the input, as is B's crop.
            0 (default) returns to A itself, the paper's cycle, which a
            feature map coding absolute position solves without any
            correspondence; m > 0 costs one more backbone pass per pair.
        feature_stride (int): F's stride in pixels, by which the shifts are
            scaled; the input (H, W) must give F's grid ``ceil(H / s)``.
            Defaults to 8.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 cam_classifier: Optional[dict] = None,
                 cam_classifier_checkpoint: Optional[str] = None,
                 init_from_classifier: bool = True,
                 cam_source: str = 'classifier',
                 num_classes: int = 20,
                 in_channels: Optional[int] = None,
                 feature_index: int = -1,
                 dropout_ratio: float = 0.5,
                 loss_cls: dict = dict(
                     type='MultiLabelSoftMarginLoss', loss_weight=0.1),
                 return_shift: int = 0,
                 feature_stride: int = 8,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if cam_source not in CAM_SOURCES:
            raise ValueError(f'cam_source must be one of {CAM_SOURCES}, got '
                             f'{cam_source!r}')
        if isinstance(cam_classifier, str):
            raise TypeError(
                f"cam_classifier must be C's model config (a dict), got the "
                f'path {cam_classifier!r}: building a model reads no file. '
                "Give the stage-1 model, resolved when the config is parsed: "
                'put its model file in _base_ and write cam_classifier='
                '{{_base_.model}}, as configs/_base_/models/cyc_resnet38.py '
                'does')
        if cam_classifier is None and cam_source == 'classifier':
            raise ValueError(
                "cam_source='classifier' needs cam_classifier (C's model "
                "config); only cam_source='disk' works without it")
        if (cam_classifier is None and cam_classifier_checkpoint is not None
                and not init_from_classifier):
            raise ValueError(
                f'cam_classifier_checkpoint {cam_classifier_checkpoint} would '
                'be unused: without cam_classifier it only initialises F; set '
                'init_from_classifier=True or drop the checkpoint')
        for key, value, low in (('return_shift', return_shift, 0),
                                ('feature_stride', feature_stride, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    value < low:
                raise ValueError(
                    f'model.{key} must be an int >= {low}, got {value!r}')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.return_shift = return_shift
        self.feature_stride = feature_stride
        self.cam_source = cam_source
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)
        self.cam_classifier = None if cam_classifier is None else \
            MODELS.build(classifier_model_cfg(cam_classifier))
        in_channels = feature_channels(self.backbone, feature_index,
                                       in_channels)
        if (self.cam_classifier is not None
                and self.cam_classifier.num_classes != num_classes):
            raise ValueError(
                f'cam_classifier has {self.cam_classifier.num_classes} '
                f'classes but num_classes is {num_classes}')
        self.num_classes = num_classes
        self.feature_index = feature_index
        self.dropout = nn.Dropout2d(dropout_ratio)
        self.classifier = nn.Conv2d(
            in_channels, num_classes, kernel_size=1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)
        self.loss_cls = MODELS.build(loss_cls)
        self.cam_classifier_checkpoint = cam_classifier_checkpoint
        self.init_from_classifier = init_from_classifier
        if self.cam_classifier is not None:
            self.cam_classifier.requires_grad_(False)
            self.cam_classifier.eval()

    def init_weights(self) -> None:
        """Load C and initialise F from ``cam_classifier_checkpoint``.

        The checkpoint is read here, not in ``__init__``, as mmengine's
        ``Pretrained`` ``init_cfg`` reads its file: the Runner calls this
        before training (before ``load_from`` / resume); a tool that needs
        the classifier's weights without a full CyCSNet checkpoint calls it
        itself (``mmcyc.apis.load_cycsnet``). C gets every key, strictly;
        F's backbone the ``backbone.*`` keys unless ``init_from_classifier``
        is False; the rest keeps the initialisation of ``__init__``. Without
        a checkpoint, mmengine's ``init_weights`` runs (each submodule's
        ``init_cfg``).

        Raises:
            ValueError: Naming the checkpoint and the first missing keys,
                unexpected keys (C only: F uses part of C's) and shape
                mismatches.
        """
        checkpoint = self.cam_classifier_checkpoint
        if checkpoint is None:
            super().init_weights()
            return
        state_dict = read_classifier_state_dict(checkpoint)
        if self.cam_classifier is not None:
            load_classifier(self.cam_classifier, state_dict, checkpoint)
        if self.init_from_classifier:
            load_backbone_from_classifier(self.backbone, state_dict,
                                          checkpoint)

    def train(self, mode: bool = True) -> 'CyCSNet':
        """Set train mode; the frozen classifier C always stays in eval."""
        super().train(mode)
        if self.cam_classifier is not None:
            self.cam_classifier.eval()
        return self

    # ------------------------------------------------------------------ #
    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """F's feature map, shape (N, D, h, w)."""
        return select_feature(self.backbone(inputs), self.feature_index)

    @torch.no_grad()
    def cam_a(self, inputs_a: torch.Tensor, labels_a: torch.Tensor,
              size: Sequence[int]) -> torch.Tensor:
        """CAM_A from the frozen classifier (Eq. 1-2) at F's resolution.

        C computes its CAM on its own stride-8 grid, which is F's: the CAM
        is then used as it is. A CAM on a finer grid (a classifier of a
        smaller stride) is brought to F's (h, w) by psa's rule,
        :func:`~mmcyc.models.utils.cam.cam_to_grid` (zero-pad the bottom /
        right to a multiple of the stride, average each block); a coarser
        one is a ValueError.

        Returns:
            Tensor: (N, C, h, w) normalised CAMs, zero for absent classes.
        """
        if self.cam_classifier is None:
            raise RuntimeError(
                'cam_a needs the classifier C, which is not built '
                "(cam_source='disk' with cam_classifier=None); use "
                'stored_cam_a')
        cam = self.cam_classifier.cam(inputs_a).float()  # (N, C, h', w')
        cam = cam_to_grid(cam, size)  # (N, C, h, w)
        return normalize_cam(mask_cam_by_label(cam, labels_a))

    @torch.no_grad()
    def stored_cam_a(self,
                     data_samples_a: SampleList,
                     labels_a: torch.Tensor,
                     input_size: Sequence[int],
                     size: Sequence[int],
                     offset_px: Optional[torch.Tensor] = None,
                     crop_size: Optional[Sequence[int]] = None
                     ) -> torch.Tensor:
        """CAM_A from the stored CAMs of A (``cam_source='disk'``).

        Each ``gt_cam`` (C, H_i, W_i) is zero-padded (or cropped) at the
        bottom / right to the batch's input size, as the data preprocessor
        pads the images, brought to F's (h, w) by psa's rule
        (:func:`~mmcyc.models.utils.cam.cam_to_grid`: zero-pad the bottom /
        right to a multiple of the stride, average each stride x stride
        block, so a position gets the mean CAM of the pixels it covers),
        masked by A's labels and normalised by its maximum over the crop
        (Eq. 2), the same as :meth:`cam_a`.

        Args:
            data_samples_a (list[SegDataSample]): A's samples with
                ``gt_cam`` (see ``LoadCAMFromFile``).
            labels_a (Tensor): A's multi-hot labels, shape (N, C).
            input_size (Sequence[int]): The batch's input (H, W).
            size (Sequence[int]): F's (h, w).
            offset_px (Tensor, optional): (N, 2) pixel offsets of the crops
                of A that F saw (``return_shift``); the CAMs are cropped
                the same way, to ``crop_size``, before the grid. Defaults to
                None: no crop.
            crop_size (Sequence[int], optional): (h', w') of those crops.

        Returns:
            Tensor: (N, C, h, w) normalised CAMs, zero for absent classes.
        """
        if not all('gt_cam' in s for s in data_samples_a):
            raise ValueError(
                "cam_source='disk' reads CAM_A from data_sample.gt_cam, which "
                'the A images lack: add LoadCAMFromFile to the pipeline '
                '(after LoadCheckedImageFromFile)')
        cam = torch.stack([
            fit_to_size(s.gt_cam.data.to(labels_a.device).float(), input_size)
            for s in data_samples_a
        ])  # (N, C, H, W)
        if offset_px is not None:
            cam = crop_images(cam, offset_px, crop_size)  # (N, C, h', w')
        if cam.shape[1] != self.num_classes:
            raise ValueError(
                f'gt_cam has {cam.shape[1]} channels but the model has '
                f'{self.num_classes} classes (LoadCAMFromFile num_classes)')
        cam = cam_to_grid(cam, size)  # (N, C, h, w)
        return normalize_cam(mask_cam_by_label(cam, labels_a))

    def _cam(self, images: torch.Tensor, data_samples: SampleList,
             labels: torch.Tensor, input_size: Sequence[int],
             size: Sequence[int], offset_px: Optional[torch.Tensor],
             crop_size: Optional[Sequence[int]]) -> torch.Tensor:
        """Normalised CAMs of images (A's or B's) from ``cam_source``.

        Args:
            images (Tensor): The images F saw, shape (N, 3, H', W').
            data_samples (list[SegDataSample]): Their samples.
            labels (Tensor): Their multi-hot labels, shape (N, C).
            input_size (Sequence[int]): The batch's input (H, W).
            size (Sequence[int]): F's (h, w).
            offset_px (Tensor, optional): Crop offsets in pixels, (N, 2).
            crop_size (Sequence[int], optional): (H', W') of the crops.

        Returns:
            Tensor: (N, C, h, w), see :meth:`cam_a` and
            :meth:`stored_cam_a`.
        """
        if self.cam_source == 'disk':
            return self.stored_cam_a(data_samples, labels, input_size, size,
                                     offset_px, crop_size)
        return self.cam_a(images, labels, size)

    @staticmethod
    def _stack(data_samples: SampleList, key: str) -> torch.Tensor:
        if not data_samples or key not in data_samples[0]:
            raise ValueError(f'each data sample must carry `{key}` (use '
                             'PairedVOCDataset with pair_collate)')
        return torch.stack([s.get(key) for s in data_samples]).float()

    def _crop_views(self, inputs: torch.Tensor, num_pairs: int) -> tuple:
        """F of the crops of A, B and A' (``return_shift``), one batch.

        Args:
            inputs (Tensor): ``[A_1..A_N, B_1..B_N]``, shape (2N, 3, H, W).
            num_pairs (int): N.

        Returns:
            tuple: ``feats`` F of A's start crops and B's crops (2N, D, h,
            w); ``images`` those crops (2N, 3, H', W'); ``crop`` (H', W');
            ``offsets`` their offsets in pixels (2N, 2), CPU;
            ``return_view`` the head's ``feat_return`` (N, D, h, w) and
            ``return_shift`` (N, 2) in cells.
        """
        stride = self.feature_stride
        crop = tuple(v - stride * self.return_shift for v in inputs.shape[2:])
        if min(crop) < stride:
            raise ValueError(
                f'model.return_shift={self.return_shift} crops '
                f'{stride * self.return_shift} pixels off the '
                f'{tuple(inputs.shape[2:])} inputs: nothing is left')
        # start crops of A, crops of B, return crops of A, in cells
        start, back = opposite_corners(num_pairs, self.return_shift)
        offsets = torch.cat(
            [start, draw_offsets(num_pairs, self.return_shift), back])
        views = crop_images(
            torch.cat([inputs, inputs[:num_pairs]]), offsets * stride, crop)
        feats = self.extract_feat(views)  # (3N, D, h, w)
        grid = tuple(-(-v // stride) for v in crop)
        if tuple(feats.shape[2:]) != grid:
            raise ValueError(
                f'model.return_shift needs F on the stride-{stride} grid '
                f'{grid} of the {crop} crops, got {tuple(feats.shape[2:])}: '
                'set model.feature_stride')
        return_view = dict(
            feat_return=feats[2 * num_pairs:],
            return_shift=(start - back).to(inputs.device))
        return (feats[:2 * num_pairs], views[:2 * num_pairs], crop,
                offsets[:2 * num_pairs] * stride, return_view)

    def loss(self, inputs: torch.Tensor,
             data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """L_cyc + lambda L_cls (Eq. 13) for N pairs given as 2N images."""
        if inputs.shape[0] % 2 or inputs.shape[0] != len(data_samples):
            raise ValueError(
                f'expected 2N images [A_1..A_N, B_1..B_N] with as many data '
                f'samples, got {inputs.shape[0]} images and '
                f'{len(data_samples)} samples')
        num_pairs = inputs.shape[0] // 2
        labels = self._stack(data_samples, 'gt_img_label').to(inputs.device)
        shared = self._stack(data_samples[:num_pairs],
                             'gt_shared_label').to(inputs.device)
        return_view, crop, offsets = {}, None, None
        images = inputs
        if self.return_shift:
            feats, images, crop, offsets, return_view = \
                self._crop_views(inputs, num_pairs)
        else:
            feats = self.extract_feat(inputs)  # (2N, D, h, w)
        feat_a, feat_b = feats[:num_pairs], feats[num_pairs:]

        def cam_of(side: slice) -> torch.Tensor:  # (N, C, h, w)
            return self._cam(images[side], data_samples[side], labels[side],
                             inputs.shape[2:], feats.shape[2:],
                             None if offsets is None else offsets[side], crop)

        cam_a = cam_of(slice(0, num_pairs))
        if getattr(self.head, 'target_cells', 'all') == 'cam':
            # the head's propagation runs over B's CAM
            return_view['cam_b'] = cam_of(slice(num_pairs, 2 * num_pairs))
        losses = self.head.loss(feat_a, feat_b, cam_a, shared, **return_view)
        pooled = F.adaptive_avg_pool2d(self.dropout(feats), 1)  # (2N, D, 1, 1)
        logits = self.classifier(pooled).flatten(1)  # (2N, C)
        losses[self.loss_cls.loss_name] = self.loss_cls(logits, labels)
        return losses

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor') -> Union[Dict, torch.Tensor]:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(
            f'CyCSNet supports mode "loss" and "tensor", got "{mode}": its '
            'predictions are refined CAMs, made by CAMRefiner (stage 3)')
