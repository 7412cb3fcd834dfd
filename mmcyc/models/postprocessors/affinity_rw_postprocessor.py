# Copyright (c) mmcyc contributors. All rights reserved.
"""AffinityNet's random walk as a registered module (pipeline stage 4)."""
import numbers

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ..utils.random_walk import pair_affinity, radius_offsets, random_walk


@MODELS.register_module()
class AffinityRWPostprocessor(BaseModule):
    """Expand class scores by a random walk on AffinityNet's affinities.

    Ahn and Kwak, "Learning Pixel-level Semantic Affinity with Image-level
    Supervision" (CVPR 2018, https://arxiv.org/abs/1803.10464), Sect. 3.3,
    as run by psa's ``infer_aff.py``; CyCSNet uses it on its refined CAMs
    (paper Table 1, "+ RW"). The defaults reproduce ``infer_aff.py``.

    Call order (``rw(embedding, scores)``)::

        radius_offsets(radius)                      (once, in __init__)
        pair_affinity(embedding, offsets)           a_ij = exp(-mean|f_i-f_j|)
        random_walk(scores, affinity, offsets, beta, steps)
            -> transition_matrix: a_ij^beta, symmetric, self-loop 1,
               column-normalised (sparse)
            -> scores @ T, ``steps`` times

    The caller builds the scores: psa puts ``(1 - max_c CAM)^16`` in front
    of the class maps, zero-pads the image to a multiple of 8 and average
    pools the maps by 8 to the embedding's size; the propagated scores are
    upsampled and their argmax is the pseudo mask.

    Args:
        radius (int): Pairs within this radius (psa's 34-offset half disk
            for 5). Defaults to 5.
        beta (float): Exponent of the affinities (psa ``--beta``).
            Defaults to 8.0.
        steps (int): Walk steps t (psa: ``2 ** logt`` with logt = 8).
            Defaults to 256.
        init_cfg (dict, optional): Initialisation config (no parameters).
    """

    def __init__(self,
                 radius: int = 5,
                 beta: float = 8.0,
                 steps: int = 256,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(radius, int) or isinstance(radius, bool) \
                or radius < 2:
            raise ValueError(f'radius must be an int >= 2, got {radius!r}')
        if not isinstance(beta, numbers.Real) or isinstance(beta, bool) \
                or not beta > 0:
            raise ValueError(f'beta must be a number > 0, got {beta!r}')
        if not isinstance(steps, int) or isinstance(steps, bool) \
                or steps < 0:
            raise ValueError(f'steps must be an int >= 0, got {steps!r}')
        self.radius = radius
        self.beta = float(beta)
        self.steps = steps
        self.offsets = radius_offsets(radius)

    @torch.no_grad()
    def forward(self, embedding: torch.Tensor,
                scores: torch.Tensor) -> torch.Tensor:
        """Propagate ``scores`` over the affinities of ``embedding``.

        Args:
            embedding (Tensor): AffinityNet features, shape (N, D, h, w).
            scores (Tensor): Non-negative scores to propagate, background
                channel included if wanted, shape (N, K, h, w); propagated
                as given.

        Returns:
            Tensor: Scores after the walk, shape (N, K, h, w), on
            ``embedding``'s device.
        """
        if embedding.dim() != 4 or scores.dim() != 4:
            raise ValueError(
                'embedding and scores must be (N, D, h, w) and (N, K, h, w), '
                f'got shapes {tuple(embedding.shape)} and '
                f'{tuple(scores.shape)}')
        if embedding.shape[0] != scores.shape[0] or \
                embedding.shape[2:] != scores.shape[2:]:
            raise ValueError(
                'embedding and scores must have the same batch size and '
                f'size (N, ., h, w), got {tuple(embedding.shape)} and '
                f'{tuple(scores.shape)}; pool the scores to the embedding\'s '
                'stride first')
        scores = scores.to(embedding.device)
        if not torch.isfinite(scores).all():
            raise ValueError('scores must be finite')
        if scores.numel() and scores.min() < 0:
            raise ValueError('scores must be non-negative, got a minimum of '
                             f'{scores.min().item():.4g}')
        affinity = pair_affinity(embedding, self.offsets)  # (N, P, h', w')
        return random_walk(scores, affinity, self.offsets, self.beta,
                           self.steps)

    def extra_repr(self) -> str:
        return f'radius={self.radius}, beta={self.beta}, steps={self.steps}'
