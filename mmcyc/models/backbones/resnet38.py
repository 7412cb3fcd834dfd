# Copyright (c) mmcyc contributors. All rights reserved.
"""ResNet-38 ("model A1"), the dilated stride-8 layout of AffinityNet."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from .backbone_args import check_widen_factor, checked_out_indices
from .freezing import freeze, freeze_batch_norms

# Wide ResNet-38 in AffinityNet's layout (jiwoon-ahn/psa,
# network/resnet38d.py).
# Submodule names equal the reference ones, so its checkpoints map 1:1.
# Basic pre-activation blocks:
# (name, in, mid, out, stride, first_dilation, dilation)
RES_BLOCKS = (
    ('b2', 64, 128, 128, 2, 1, 1),
    ('b2_1', 128, 128, 128, 1, 1, 1),
    ('b2_2', 128, 128, 128, 1, 1, 1),
    ('b3', 128, 256, 256, 2, 1, 1),
    ('b3_1', 256, 256, 256, 1, 1, 1),
    ('b3_2', 256, 256, 256, 1, 1, 1),
    ('b4', 256, 512, 512, 2, 1, 1),
    ('b4_1', 512, 512, 512, 1, 1, 1),
    ('b4_2', 512, 512, 512, 1, 1, 1),
    ('b4_3', 512, 512, 512, 1, 1, 1),
    ('b4_4', 512, 512, 512, 1, 1, 1),
    ('b4_5', 512, 512, 512, 1, 1, 1),
    # Output stride 8 from here on: dilation instead of striding.
    ('b5', 512, 512, 1024, 1, 1, 2),
    ('b5_1', 1024, 512, 1024, 1, 2, 2),
    ('b5_2', 1024, 512, 1024, 1, 2, 2),
)
# Bottleneck pre-activation blocks: (name, in, out, dilation)
BOTTLENECK_BLOCKS = (
    ('b6', 1024, 2048, 4),
    ('b7', 2048, 4096, 4),
)
# Channels of the feature taps at full width, indexed by ``out_indices``:
# 0 input of b5 after bn+relu (psa 'conv4'), 1 input of b6 after bn+relu
# (psa 'conv5'), 2 raw output of b6, 3 relu(bn7(b7)) (psa 'conv6').
TAP_CHANNELS = (512, 1024, 2048, 4096)
# Modules frozen by ``frozen_stages = i``: stages[0..i].
STAGES = (
    ('conv1a', ),
    ('b2', 'b2_1', 'b2_2'),
    ('b3', 'b3_1', 'b3_2'),
    ('b4', 'b4_1', 'b4_2', 'b4_3', 'b4_4', 'b4_5'),
    ('b5', 'b5_1', 'b5_2'),
    ('b6', ),
    ('b7', 'bn7'),
)


class ResBlock(nn.Module):
    """Pre-activation basic block with bias-free convs.

    ``x -> bn_branch2a -> relu (= x_bn_relu)``; the output is
    ``branch1 + branch2`` with ``branch1 = conv_branch1(x_bn_relu)`` when the
    shape changes (identity ``x`` otherwise) and
    ``branch2 = conv_branch2b1(relu(bn_branch2b1(conv_branch2a(x_bn_relu))))``.

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Channels after ``conv_branch2a``.
        out_channels (int): Output channels.
        stride (int): Stride of ``conv_branch2a`` and ``conv_branch1``.
            Defaults to 1.
        first_dilation (int): Dilation (= padding) of ``conv_branch2a``.
            Defaults to 1.
        dilation (int): Dilation (= padding) of ``conv_branch2b1``.
            Defaults to 1.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 first_dilation: int = 1,
                 dilation: int = 1):
        super().__init__()
        self.same_shape = in_channels == out_channels and stride == 1
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(
            in_channels,
            mid_channels,
            3,
            stride,
            padding=first_dilation,
            dilation=first_dilation,
            bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(mid_channels)
        self.conv_branch2b1 = nn.Conv2d(
            mid_channels,
            out_channels,
            3,
            padding=dilation,
            dilation=dilation,
            bias=False)
        if not self.same_shape:
            self.conv_branch1 = nn.Conv2d(
                in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the block.

        Args:
            x (Tensor): Input, shape (N, C_in, H, W).

        Returns:
            tuple[Tensor, Tensor]: The block output, shape
            (N, C_out, H / stride, W / stride), and ``x_bn_relu``, shape
            (N, C_in, H, W).
        """
        x_bn_relu = F.relu(self.bn_branch2a(x))
        branch1 = x if self.same_shape else self.conv_branch1(x_bn_relu)
        branch2 = self.conv_branch2a(x_bn_relu)
        branch2 = self.conv_branch2b1(F.relu(self.bn_branch2b1(branch2)))
        return branch1 + branch2, x_bn_relu


class ResBlockBottleneck(nn.Module):
    """Pre-activation bottleneck block with dropout and bias-free convs.

    ``x -> bn_branch2a -> relu (= x_bn_relu)``; the output is
    ``conv_branch1(x_bn_relu) + branch2`` with branch2 =
    ``conv_branch2a (1x1, C_out/4) -> bn -> relu -> dropout ->
    conv_branch2b1 (3x3 dilated, C_out/2) -> bn -> relu -> dropout ->
    conv_branch2b2 (1x1, C_out)``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels; divisible by 4.
        dilation (int): Dilation (= padding) of ``conv_branch2b1``.
            Defaults to 1.
        dropout (float): Dropout2d probability of both dropouts.
            Defaults to 0.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 dilation: int = 1,
                 dropout: float = 0.):
        super().__init__()
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(
            in_channels, out_channels // 4, 1, bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(out_channels // 4)
        self.dropout_2b1 = nn.Dropout2d(dropout)
        self.conv_branch2b1 = nn.Conv2d(
            out_channels // 4,
            out_channels // 2,
            3,
            padding=dilation,
            dilation=dilation,
            bias=False)
        self.bn_branch2b2 = nn.BatchNorm2d(out_channels // 2)
        self.dropout_2b2 = nn.Dropout2d(dropout)
        self.conv_branch2b2 = nn.Conv2d(
            out_channels // 2, out_channels, 1, bias=False)
        self.conv_branch1 = nn.Conv2d(
            in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the block.

        Args:
            x (Tensor): Input, shape (N, C_in, H, W).

        Returns:
            tuple[Tensor, Tensor]: The block output, shape (N, C_out, H, W),
            and ``x_bn_relu``, shape (N, C_in, H, W).
        """
        x_bn_relu = F.relu(self.bn_branch2a(x))
        branch1 = self.conv_branch1(x_bn_relu)
        branch2 = self.conv_branch2a(x_bn_relu)
        branch2 = self.dropout_2b1(F.relu(self.bn_branch2b1(branch2)))
        branch2 = self.conv_branch2b1(branch2)
        branch2 = self.dropout_2b2(F.relu(self.bn_branch2b2(branch2)))
        branch2 = self.conv_branch2b2(branch2)
        return branch1 + branch2, x_bn_relu


@MODELS.register_module()
class ResNet38(BaseModule):
    """Wide ResNet-38 (model A1) with output stride 8, as in AffinityNet.

    Wu, Shen, van den Hengel, "Wider or Deeper: Revisiting the ResNet Model
    for Visual Recognition" (https://arxiv.org/abs/1611.10080), in the
    dilated layout of Ahn and Kwak, "Learning Pixel-level Semantic Affinity
    with Image-level Supervision" (CVPR 2018, ``jiwoon-ahn/psa``
    ``network/resnet38d.py``), which CyCSNet uses for its classifier C and,
    without its last block (``with_b7=False``), for its network F.

    Layout: ``conv1a`` (3->64) -> b2 x3 (128, /2) -> b3 x3 (256, /2) ->
    b4 x6 (512, /2) -> b5 x3 (1024, dilation 2) -> b6 bottleneck (2048,
    dilation 4, dropout) -> b7 bottleneck (4096, dilation 4, dropout) ->
    ``bn7`` -> ReLU. Pre-activation blocks, bias-free convs. Submodule names
    equal the reference, so its state dicts load 1:1 (see
    ``tools/model_converters/psa2mmcyc.py``). At full width with b7 it has
    about 104.3 M parameters (105 M with the BatchNorm buffers).

    Feature taps (``out_indices``), all at stride 8:

    - 0: input of b5 after its bn+relu, 512 channels (psa ``conv4``);
    - 1: input of b6 after its bn+relu, 1024 channels (psa ``conv5``);
    - 2: raw output of b6, 2048 channels (CyCSNet's F);
    - 3: ``relu(bn7(b7(x)))``, 4096 channels (psa ``conv6``, the CAM
      feature).

    Args:
        out_indices (Sequence[int] | int): Taps to return, in this order.
            Defaults to (0, 1, 3), the features AffinityNet uses.
        widen_factor (float): Multiplies every channel count (toy configs
            and tests use e.g. 0.125). Defaults to 1.0, the reference.
        with_b7 (bool): Build b7 and bn7. False gives CyCSNet's F, which
            ends after b6; then only taps 0-2 exist. Defaults to True.
        frozen_stages (int): Freeze (``requires_grad=False``, eval mode)
            stages 0..frozen_stages, stage 0 being ``conv1a``, 1 the b2
            blocks, 2 b3, 3 b4, 4 b5, 5 b6, 6 b7+bn7. -1 freezes nothing.
            The reference classifier freezes conv1a and b2 (1).
            Defaults to -1.
        norm_eval (bool): Keep every BatchNorm in eval mode with its affine
            parameters frozen, as the reference trains (its batches of 8
            images are too small for batch statistics). Defaults to True.
        dropout_b6 (float): Dropout2d probability inside b6. Defaults to
            0.3, the reference.
        dropout_b7 (float): Dropout2d probability inside b7. Defaults to
            0.5, the reference.
        init_cfg (dict | list[dict], optional): Initialisation config, e.g.
            ``dict(type='Pretrained', checkpoint=path, prefix='backbone.')``
            for a checkpoint converted by ``psa2mmcyc.py``. Defaults to None
            (PyTorch's default init).

    Note:
        Taps that are not requested are not computed: with
        ``out_indices=(0, 1)`` b7 is skipped, so its parameters get no
        gradient (use ``with_b7=False`` rather than leaving them unused
        under DistributedDataParallel).

    Example:
        >>> import torch
        >>> model = ResNet38(widen_factor=0.125).eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 64, 64))]
        [(1, 64, 8, 8), (1, 128, 8, 8), (1, 512, 8, 8)]
    """

    def __init__(self,
                 out_indices: Union[Sequence[int], int] = (0, 1, 3),
                 widen_factor: float = 1.0,
                 with_b7: bool = True,
                 frozen_stages: int = -1,
                 norm_eval: bool = True,
                 dropout_b6: float = 0.3,
                 dropout_b7: float = 0.5,
                 init_cfg: Optional[Union[dict, list]] = None):
        super().__init__(init_cfg=init_cfg)
        num_taps = len(TAP_CHANNELS) if with_b7 else len(TAP_CHANNELS) - 1
        out_indices = checked_out_indices(out_indices, num_taps,
                                          f' (with_b7={with_b7})')
        check_widen_factor(widen_factor)
        num_stages = len(STAGES) if with_b7 else len(STAGES) - 1
        if not (isinstance(frozen_stages, int)
                and -1 <= frozen_stages < num_stages):
            raise ValueError(f'frozen_stages must be an int in [-1, '
                             f'{num_stages - 1}] (with_b7={with_b7}), got '
                             f'{frozen_stages!r}')
        for name, p in (('dropout_b6', dropout_b6), ('dropout_b7',
                                                     dropout_b7)):
            if not 0 <= p < 1:
                raise ValueError(f'{name} must be in [0, 1), got {p}')

        self.out_indices = out_indices
        self.widen_factor = widen_factor
        self.with_b7 = with_b7
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._stages = STAGES[:num_stages]

        def width(channels: int) -> int:
            return int(round(channels * widen_factor))

        self.conv1a = nn.Conv2d(3, width(64), 3, padding=1, bias=False)
        for name, cin, cmid, cout, stride, dil1, dil in RES_BLOCKS:
            self.add_module(
                name,
                ResBlock(width(cin), width(cmid), width(cout), stride, dil1,
                         dil))
        dropouts = dict(b6=dropout_b6, b7=dropout_b7)
        for name, cin, cout, dil in BOTTLENECK_BLOCKS[:2 if with_b7 else 1]:
            self.add_module(
                name,
                ResBlockBottleneck(width(cin), width(cout), dil,
                                   dropouts[name]))
        if with_b7:
            self.bn7 = nn.BatchNorm2d(width(4096))
        self.out_channels = tuple(
            width(TAP_CHANNELS[i]) for i in out_indices)
        self._freeze()

    def _freeze(self) -> None:
        """Apply ``frozen_stages`` and ``norm_eval`` (idempotent)."""
        freeze(getattr(self, name)
               for stage in self._stages[:self.frozen_stages + 1]
               for name in stage)
        if self.norm_eval:
            freeze_batch_norms(self)

    def train(self, mode: bool = True) -> 'ResNet38':
        """Set train/eval mode, keeping frozen stages and norms frozen."""
        super().train(mode)
        self._freeze()
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Extract the requested feature taps.

        Args:
            x (Tensor): Images, shape (N, 3, H, W).

        Returns:
            tuple[Tensor]: One map per entry of ``out_indices``, in that
            order, each of shape (N, C_i, ceil(H / 8), ceil(W / 8)) with
            ``C_i`` in ``out_channels``.
        """
        last = max(self.out_indices)
        taps = {}
        x = self.conv1a(x)  # (N, 64, H, W)
        for name, *_ in RES_BLOCKS:
            x, x_bn_relu = getattr(self, name)(x)
            if name == 'b5':
                taps[0] = x_bn_relu  # (N, 512, H/8, W/8)
                if last == 0:
                    break
        if last >= 1:
            x, taps[1] = self.b6(x)  # (N, 2048, ..), (N, 1024, ..)
            taps[2] = x
        if last >= 3:
            x, _ = self.b7(x)  # (N, 4096, H/8, W/8)
            taps[3] = F.relu(self.bn7(x))
        return tuple(taps[i] for i in self.out_indices)
