# Copyright (c) mmcyc contributors. All rights reserved.
"""AffinityNet's embedding head and affinity loss (pipeline stage 4)."""
import copy
import numbers
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ..utils.affinity_labels import IGNORE_INDEX, affinity_pair_labels
from ..utils.random_walk import pair_affinity, radius_offsets

# psa ``train_aff.py``: -log(aff + 1e-5) and -log(1 + 1e-5 - aff).
LOG_EPS = 1e-5


def level_norm_cfgs(norm_cfg: dict, num_levels: int) -> list:
    """One norm config per level from ``norm_cfg``.

    A sequence ``num_groups`` (GroupNorm) gives each level its own; any
    other config is shared.

    Args:
        norm_cfg (dict): e.g. ``dict(type='GN', num_groups=(8, 16, 32))``.
        num_levels (int): Number of levels.

    Returns:
        list[dict]: ``num_levels`` configs for ``build_norm_layer``.
    """
    if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
        raise TypeError(f'norm_cfg must be a dict with a type, got '
                        f'{norm_cfg!r}')
    groups = norm_cfg.get('num_groups')
    if not isinstance(groups, (list, tuple)):
        return [copy.deepcopy(dict(norm_cfg)) for _ in range(num_levels)]
    if len(groups) != num_levels:
        raise ValueError(f'norm_cfg.num_groups must hold one value per level '
                         f'({num_levels}), got {tuple(groups)}')
    return [dict(norm_cfg, num_groups=g) for g in groups]


@MODELS.register_module()
class AffinityEmbedHead(BaseModule):
    """Multi-level features -> affinity embedding, and the affinity loss.

    Ahn and Kwak, "Learning Pixel-level Semantic Affinity with Image-level
    Supervision" (CVPR 2018, https://arxiv.org/abs/1803.10464), Sect. 3.2,
    as psa's ``network/resnet38_aff.py`` and ``train_aff.py`` build it.
    Parameter names fit psa's ``res38_aff.pth`` once converted
    (``f8_3/f8_4/f8_5 -> projs.0/1/2``, ``f9 -> fuse``); with
    ``norm_cfg=dict(type='GN', num_groups=(8, 16, 32))`` they fit psa's
    VGG-16 ``vgg16_aff`` (``network/vgg16_aff.py``: ``gn8_3/gn8_4/gn8_5 ->
    norms.0/1/2``).

    Call order::

        forward(feats)                   projs[i] 1x1 [-> norms[i]] + ELU on
                                         each level, concat,
                                         fuse 1x1 + ELU -> f
        loss_by_feat(f, aff_label)
            pair_affinity(f, offsets)     a_ij = exp(-mean|f_i - f_j|)
            affinity_pair_labels(label)   bg / fg / neg pairs
            -> {loss_bg, loss_fg, loss_neg}

    Losses (psa): ``loss_bg = w_bg mean_bg -log(a + 1e-5)``, ``loss_fg =
    w_fg mean_fg -log(a + 1e-5)``, ``loss_neg = w_neg mean_neg -log(1 +
    1e-5 - a)``, each mean over its own pairs in the batch (0 when there
    are none; psa divides by ``count + 1e-5``, a relative difference below
    1e-5 for any non-empty set).

    Args:
        in_channels (Sequence[int]): Channels of the input levels.
            Defaults to (512, 1024, 4096), ResNet-38's taps 0, 1, 3.
        proj_channels (Sequence[int]): Output channels of the per-level 1x1
            convs. Defaults to (64, 128, 256) (psa).
        out_channels (int, optional): Channels of the fused embedding.
            Defaults to None: ``sum(proj_channels)`` (448, psa).
        radius (int): Pairs within this radius. Defaults to 5 (psa).
        loss_weights (Sequence[float]): Weights of the bg, fg and neg
            terms. Defaults to (0.25, 0.25, 0.5) (psa: ``bg/4 + fg/4 +
            neg/2``).
        ignore_index (int): Ignored label value. Defaults to 255.
        norm_cfg (dict, optional): A norm after each per-level projection,
            before its ELU (none after ``fuse``, as psa). A GN config's
            ``num_groups`` may be a sequence, one per level: psa's VGG-16
            uses ``dict(type='GN', num_groups=(8, 16, 32))``. Defaults to
            None: no norm (psa's ResNet-38).
        init_cfg (dict, optional): Initialisation config. Defaults to None:
            psa's init (Kaiming normal for ``projs``, Xavier uniform with
            gain 4 for ``fuse``), applied in ``__init__``.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (512, 1024, 4096),
                 proj_channels: Sequence[int] = (64, 128, 256),
                 out_channels: Optional[int] = None,
                 radius: int = 5,
                 loss_weights: Sequence[float] = (0.25, 0.25, 0.5),
                 ignore_index: int = IGNORE_INDEX,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        in_channels, proj_channels = tuple(in_channels), tuple(proj_channels)
        if (not in_channels or len(in_channels) != len(proj_channels) or
                min(in_channels + proj_channels) < 1):
            raise ValueError(
                'in_channels and proj_channels must be positive and of the '
                f'same length, got {in_channels} and {proj_channels}')
        out_channels = sum(proj_channels) if out_channels is None \
            else out_channels
        if not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(
                f'out_channels must be a positive int, got {out_channels!r}')
        loss_weights = tuple(loss_weights)
        if len(loss_weights) != 3 or not all(
                isinstance(w, numbers.Real) and w >= 0 for w in loss_weights):
            raise ValueError('loss_weights must be three numbers >= 0 (bg, '
                             f'fg, neg), got {loss_weights}')
        self.offsets = radius_offsets(radius)  # validates radius
        self.radius = radius
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.loss_weights = loss_weights
        self.ignore_index = ignore_index
        self.projs = nn.ModuleList(
            nn.Conv2d(cin, cout, 1, bias=False)
            for cin, cout in zip(in_channels, proj_channels))
        self.norm_cfg = norm_cfg
        if norm_cfg is not None:
            self.norms = nn.ModuleList(
                build_norm_layer(cfg, cout)[1] for cfg, cout in zip(
                    level_norm_cfgs(norm_cfg, len(proj_channels)),
                    proj_channels))
        self.fuse = nn.Conv2d(sum(proj_channels), out_channels, 1, bias=False)
        if init_cfg is None:
            for proj in self.projs:
                nn.init.kaiming_normal_(proj.weight)
            nn.init.xavier_uniform_(self.fuse.weight, gain=4)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Embed the backbone levels.

        Args:
            feats (Sequence[Tensor]): One map per level, shapes
                (N, C_i, h, w) with ``C_i = in_channels[i]``.

        Returns:
            Tensor: The affinity embedding f, shape (N, out_channels, h, w).
        """
        if len(feats) != len(self.projs):
            raise ValueError(f'expected {len(self.projs)} feature levels, '
                             f'got {len(feats)}')
        projected = [proj(x) for proj, x in zip(self.projs, feats)]
        if self.norm_cfg is not None:
            projected = [norm(x) for norm, x in zip(self.norms, projected)]
        projected = [F.elu(x) for x in projected]
        return F.elu(self.fuse(torch.cat(projected, dim=1)))  # (N, D, h, w)

    def loss_by_feat(self, embedding: torch.Tensor,
                     aff_label: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The three affinity loss terms.

        Args:
            embedding (Tensor): f, shape (N, D, h, w).
            aff_label (Tensor): Label maps at f's resolution, shape
                (N, h, w): 0 background, classes, ``ignore_index``.

        Returns:
            dict[str, Tensor]: ``loss_bg``, ``loss_fg``, ``loss_neg``
            (weighted), and the pair counts ``num_pairs_bg``,
            ``num_pairs_fg``, ``num_pairs_neg`` (for logging).
        """
        if aff_label.shape != (embedding.shape[0], *embedding.shape[2:]):
            raise ValueError(
                f'aff_label of shape {tuple(aff_label.shape)} does not fit '
                f'the embedding {tuple(embedding.shape)}: expected (N, h, w)')
        affinity = pair_affinity(embedding.float(), self.offsets)
        # (N, P, h', w')
        masks = affinity_pair_labels(aff_label.to(affinity.device),
                                     self.offsets, self.ignore_index)
        positive = -torch.log(affinity + LOG_EPS)
        negative = -torch.log(1. + LOG_EPS - affinity)
        losses = {}
        for name, mask, term, weight in zip(
                ('bg', 'fg', 'neg'), masks, (positive, positive, negative),
                self.loss_weights):
            count = mask.sum()
            losses[f'loss_{name}'] = \
                weight * (term * mask).sum() / count.clamp(min=1)
            losses[f'num_pairs_{name}'] = count.detach()
        return losses

    def predict(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """The embedding f, shape (N, out_channels, h, w)."""
        return self.forward(feats)

    def extra_repr(self) -> str:
        return (f'radius={self.radius}, loss_weights={self.loss_weights}, '
                f'ignore_index={self.ignore_index}')
