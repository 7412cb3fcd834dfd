# Copyright (c) mmcyc contributors. All rights reserved.
"""VGG-16 in DeepLab-LargeFOV's dilated stride-8 layout ("vgg16d", psa)."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from .backbone_args import check_widen_factor, checked_out_indices
from .freezing import freeze, freeze_batch_norms

# The 3x3 convolutions of jiwoon-ahn/psa network/vgg16d.py, named as there
# (the caffe layer names of vgg16_20M.caffemodel), so its state dicts map
# 1:1: (name, in, out, dilation). Each is followed by ReLU; pool1-3 (max 3x3,
# stride 2, pad 1) follow conv1_2, conv2_2, conv3_3 and pool4 (max 3x3,
# stride 1, pad 1) follows conv4_3.
CONVS = (
    ('conv1_1', 3, 64, 1),
    ('conv1_2', 64, 64, 1),
    ('conv2_1', 64, 128, 1),
    ('conv2_2', 128, 128, 1),
    ('conv3_1', 128, 256, 1),
    ('conv3_2', 256, 256, 1),
    ('conv3_3', 256, 256, 1),
    ('conv4_1', 256, 512, 1),
    ('conv4_2', 512, 512, 1),
    ('conv4_3', 512, 512, 1),
    # Output stride 8 from here on: pool4 has stride 1, conv5 dilation 2.
    ('conv5_1', 512, 512, 2),
    ('conv5_2', 512, 512, 2),
    ('conv5_3', 512, 512, 2),
)
# The convolutions after which a pooling comes: name -> its stride.
POOL_AFTER = dict(conv1_2=2, conv2_2=2, conv3_3=2, conv4_3=1)
# fc6 (3x3, dilation ``fc6_dilation``) and fc7 (1x1), as convolutions.
FC6_CHANNELS = 1024
FC7_CHANNELS = 1024
# Channels of the feature taps at full width, indexed by ``out_indices``:
# 0 relu(conv4_3) before pool4 (psa 'conv4'), 1 relu(conv5_3) (psa
# 'conv5'), 2 relu(fc7) (psa 'conv5fc', the CAM feature).
TAP_CHANNELS = (512, 512, FC7_CHANNELS)
# The layer whose output is each tap.
TAP_LAYERS = ('conv4_3', 'conv5_3', 'fc7')
# Modules frozen by ``frozen_stages = i``: stages[0..i].
STAGES = (
    ('conv1_1', 'conv1_2'),
    ('conv2_1', 'conv2_2'),
    ('conv3_1', 'conv3_2', 'conv3_3'),
    ('conv4_1', 'conv4_2', 'conv4_3'),
    ('conv5_1', 'conv5_2', 'conv5_3'),
    ('fc6', 'fc7'),
)


def norm_name(conv_name: str) -> str:
    """The norm after a conv with ``norm_cfg``: conv1_1 -> bn1_1, fc6 -> bn6.

    ``bn`` whatever the norm type, as the layer names of caffe models are.
    """
    return 'bn' + conv_name[len('conv'):] if conv_name.startswith('conv') \
        else 'bn' + conv_name[len('fc'):]


@MODELS.register_module()
class VGG16d(BaseModule):
    """VGG-16 with output stride 8 and fc6 / fc7 as convolutions.

    Simonyan and Zisserman, "Very Deep Convolutional Networks for
    Large-Scale Image Recognition" (https://arxiv.org/abs/1409.1556), in
    DeepLab-LargeFOV's dilated layout (Chen et al.,
    https://arxiv.org/abs/1412.7062) as Ahn and Kwak's AffinityNet uses it
    (CVPR 2018, ``jiwoon-ahn/psa`` ``network/vgg16d.py``, with the
    ``vgg16_20M.caffemodel`` ImageNet weights): the VGG alternative to
    ResNet-38 for the classifier C, CyCSNet's F and AffinityNet.

    Layout: conv1_1-1_2 (64) -> pool1 -> conv2_1-2_2 (128) -> pool2 ->
    conv3_1-3_3 (256) -> pool3 -> conv4_1-4_3 (512) -> pool4 -> conv5_1-5_3
    (512, dilation 2) -> fc6 (3x3, 1024, dilation ``fc6_dilation``) -> ReLU
    -> Dropout2d -> fc7 (1x1, 1024) -> ReLU. Every conv has a bias and is
    followed by ReLU; pool1-3 are max 3x3 stride 2 pad 1, pool4 max 3x3
    stride 1 pad 1; there is no pool5 (psa defines ``pool5``/``pool5a`` but
    never calls them) and no BatchNorm. At full width it has 20,483,904
    parameters (the "20M" of the caffe model). Parameter names equal psa's
    (``conv1_1.weight`` ... ``fc7.bias``), so its checkpoints load after a
    prefix (``tools/model_converters/psa_vgg2mmcyc.py``). The inputs are
    caffe's: BGR, minus the mean (104.008, 116.669, 122.675), not divided by
    a std.

    mmpretrain's ``VGG`` cannot express this layout: its pools are fixed
    2x2 stride-2 max pools (no stride-1 pool4, no 3x3 pad-1 pools, so its
    stride is 32), its convs have no dilation, and its fc6 / fc7 are
    ``nn.Linear`` classifier layers rather than (dilated) convolutions.

    Feature taps (``out_indices``), all at stride 8:

    - 0: ``relu(conv4_3)`` before pool4, 512 channels (psa ``conv4``);
    - 1: ``relu(conv5_3)``, 512 channels (psa ``conv5``);
    - 2: ``relu(fc7)``, 1024 channels (psa ``conv5fc``: the CAM feature of
      ``vgg16_cls`` and CyCSNet's F with VGG).

    Args:
        out_indices (Sequence[int] | int): Taps to return, in this order.
            Defaults to (0, 1, 2), the features AffinityNet uses.
        fc6_dilation (int): Dilation (= padding) of fc6. psa's classifier
            uses 1, its AffinityNet 4. It changes the receptive field, not
            the output shape. Defaults to 1.
        dropout_fc6 (float): Dropout2d probability between fc6 and fc7.
            Defaults to 0.5, the reference.
        widen_factor (float): Multiplies every channel count, fc6 and fc7
            included (the from-scratch synthetic configs use e.g. 0.125).
            Defaults to 1.0, the reference.
        norm_cfg (dict, optional): A norm layer (e.g. ``dict(type='BN')``)
            after every conv, before its ReLU, named ``bn1_1`` ... ``bn5_3``,
            ``bn6``, ``bn7``; the convs then have no bias. Not in psa; for
            narrow models trained from scratch. Defaults to None (psa).
        frozen_stages (int): Freeze (``requires_grad=False``, eval mode)
            stages 0..frozen_stages: 0 conv1_*, 1 conv2_*, 2 conv3_*, 3
            conv4_*, 4 conv5_*, 5 fc6 + fc7. -1 freezes nothing. psa's
            classifier and AffinityNet freeze conv1 and conv2 (1).
            Defaults to -1.
        norm_eval (bool): Keep every BatchNorm (with ``norm_cfg``) in eval
            mode with its affine parameters frozen. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config, e.g.
            ``dict(type='Pretrained', checkpoint=path, prefix='backbone.')``
            for a checkpoint converted by ``psa_vgg2mmcyc.py``. Defaults to
            None (PyTorch's default init).

    Note:
        Taps that are not requested are not computed: with
        ``out_indices=(0, )`` conv5 and fc6 / fc7 are skipped.

    Example:
        >>> import torch
        >>> model = VGG16d(widen_factor=0.125).eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 63, 65))]
        [(1, 64, 8, 9), (1, 64, 8, 9), (1, 128, 8, 9)]
    """

    def __init__(self,
                 out_indices: Union[Sequence[int], int] = (0, 1, 2),
                 fc6_dilation: int = 1,
                 dropout_fc6: float = 0.5,
                 widen_factor: float = 1.0,
                 norm_cfg: Optional[dict] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = None):
        super().__init__(init_cfg=init_cfg)
        out_indices = checked_out_indices(out_indices, len(TAP_CHANNELS))
        if isinstance(fc6_dilation, bool) or not isinstance(
                fc6_dilation, int) or fc6_dilation < 1:
            raise ValueError(
                f'fc6_dilation must be an int >= 1, got {fc6_dilation!r}')
        if not 0 <= dropout_fc6 < 1:
            raise ValueError(
                f'dropout_fc6 must be in [0, 1), got {dropout_fc6}')
        check_widen_factor(widen_factor)
        if not (isinstance(frozen_stages, int)
                and -1 <= frozen_stages < len(STAGES)):
            raise ValueError(f'frozen_stages must be an int in [-1, '
                             f'{len(STAGES) - 1}], got {frozen_stages!r}')
        if norm_cfg is not None and not isinstance(norm_cfg, dict):
            raise TypeError(
                f'norm_cfg must be a dict or None, got {norm_cfg!r}')

        self.out_indices = out_indices
        self.fc6_dilation = fc6_dilation
        self.widen_factor = widen_factor
        self.norm_cfg = norm_cfg
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        def width(channels: int) -> int:
            return int(round(channels * widen_factor))

        # (name, in, out, kernel, dilation) of every conv, fc6 and fc7 too
        # (the 3 image channels are not scaled)
        layers = [(name, cin if cin == 3 else width(cin), width(cout), 3, dil)
                  for name, cin, cout, dil in CONVS]
        layers += [('fc6', width(512), width(FC6_CHANNELS), 3, fc6_dilation),
                   ('fc7', width(FC6_CHANNELS), width(FC7_CHANNELS), 1, 1)]
        self._layer_names = tuple(name for name, *_ in layers)
        for name, cin, cout, kernel, dil in layers:
            self.add_module(
                name,
                nn.Conv2d(
                    cin,
                    cout,
                    kernel,
                    padding=dil * (kernel // 2),
                    dilation=dil,
                    bias=norm_cfg is None))
            if norm_cfg is not None:
                self.add_module(norm_name(name),
                                build_norm_layer(norm_cfg, cout)[1])
        self.drop6 = nn.Dropout2d(dropout_fc6)
        self.out_channels = tuple(
            width(TAP_CHANNELS[i]) for i in out_indices)
        self._freeze()

    def _freeze(self) -> None:
        """Apply ``frozen_stages`` and ``norm_eval`` (idempotent)."""
        for stage in STAGES[:self.frozen_stages + 1]:
            for name in stage:
                freeze([getattr(self, name)] + (
                    [getattr(self, norm_name(name))]
                    if self.norm_cfg is not None else []))
        if self.norm_eval:
            freeze_batch_norms(self)

    def train(self, mode: bool = True) -> 'VGG16d':
        """Set train/eval mode, keeping frozen stages and norms frozen."""
        super().train(mode)
        self._freeze()
        return self

    def _layer(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """conv -> [norm] -> ReLU."""
        x = getattr(self, name)(x)
        if self.norm_cfg is not None:
            x = getattr(self, norm_name(name))(x)
        return F.relu(x)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Extract the requested feature taps.

        Args:
            x (Tensor): Images, shape (N, 3, H, W).

        Returns:
            tuple[Tensor]: One map per entry of ``out_indices``, in that
            order, each of shape (N, C_i, ceil(H / 8), ceil(W / 8)) with
            ``C_i`` in ``out_channels``.
        """
        last = TAP_LAYERS[max(self.out_indices)]
        taps = {}
        for name in self._layer_names:
            x = self._layer(name, x)
            if name == 'fc6':
                x = self.drop6(x)
            if name in TAP_LAYERS:
                taps[TAP_LAYERS.index(name)] = x  # (N, C, H/8, W/8)
            if name == last:
                break
            if name in POOL_AFTER:
                # max 3x3, pad 1: ceil(H / 2) at stride 2
                x = F.max_pool2d(x, 3, POOL_AFTER[name], padding=1)
        return tuple(taps[i] for i in self.out_indices)
