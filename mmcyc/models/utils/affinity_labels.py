# Copyright (c) mmcyc contributors. All rights reserved.
"""AffinityNet's training labels from CAMs, as tensor functions (stage 4).

Ahn and Kwak (CVPR 2018, https://arxiv.org/abs/1803.10464), Sect. 3.2, as
psa's code computes them. The chain is::

    background_scores (alpha low and high; optional CRF)   per image
      -> [joint crop / flip with the image, full resolution]
      -> confident_label_map (pool by 8, argmax, 255 = ignored)
      -> affinity_pair_labels (bg / fg / neg per pair within the radius)

:func:`cam_to_affinity_label` runs the chain up to the label map.

What psa does (``infer_cls.py``, ``voc12/data.py``):

- ``_crf_with_alpha``: for the K labelled classes, ``bg = (1 - max_c
  CAM)^alpha``, stacked in front of the K maps, refined by a dense CRF;
  once with ``--low_alpha 4`` (``la``), once with ``--high_alpha 32``
  (``ha``), saved at full resolution;
- ``VOC12AffDataset``: la and ha are cropped (zero-filled outside the
  image) and flipped with the image, then average-pooled by 8
  (``skimage`` ``block_reduce``, zero padding); positions whose
  ``2 (K + 1)`` scores are all below 1e-5 ("mostly outer of cropped
  region") are ignored; otherwise the label is the la argmax when it is a
  class, background where the ha argmax is background (which wins), and
  ignored (255) elsewhere;
- ``ExtractAffinityLabelInRadius``: with the pair set of
  :mod:`.random_walk`, bg pairs (both ends background), fg pairs (both ends
  the same class) and neg pairs (both ends labelled, labels differ).

Its label values are the index of the class among the image's labelled
classes (1..K); here they are the class index + 1 when ``labels`` is given
(VOC mask values), which gives the same pairs.

Note:
    psa refines both score stacks with a dense CRF: pass
    :class:`~mmcyc.models.utils.DenseCRF` (``pydensecrf2``, installed by
    ``tools/install.sh``) or any ``crf(image, scores) -> scores``
    callable; without one, the confident regions keep the CAM's
    blurry outline: fewer confident foreground pixels at object boundaries
    and noisier bg/fg pairs there, so a weaker AffinityNet and lower
    pseudo-mask mIoU after the random walk than psa's.
"""
from typing import Callable, Optional, Tuple

import torch

from .cam import pool_scores
from .random_walk import Offsets, pair_grid

# ``pool_scores`` (psa's pad-then-average pooling by the stride) lives in
# :mod:`.cam`, the one place where maps are brought to the feature grid;
# it is used here for the label maps and stays importable from here.

IGNORE_INDEX = 255
# psa ``voc12/data.py``: pooled positions with every score below this are
# outside the image (zero-filled crop padding).
NO_SCORE_EPS = 1e-5

CRF = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def background_scores(cams: torch.Tensor,
                      alpha: float,
                      crf: Optional[CRF] = None,
                      image: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(1 - max_c CAM)^alpha`` in front of the class maps, optionally CRF'd.

    psa ``infer_cls.py`` ``_crf_with_alpha``.

    Args:
        cams (Tensor): Normalised CAMs of the K labelled classes, values in
            [0, 1], shape (K, H, W). K = 0 gives background 1 everywhere.
        alpha (float): Exponent: 4 (psa ``--low_alpha``) keeps a weak
            background, so only strong class evidence wins; 32
            (``--high_alpha``) makes the background win only where every
            class map is near zero.
        crf (callable, optional): ``crf(image, scores) -> scores`` refining
            the (K + 1, H, W) stack (psa: ``imutils.crf_inference`` with 10
            iterations). Defaults to None: no refinement.
        image (Tensor, optional): The image (H, W, 3) uint8, needed by
            ``crf``.

    Returns:
        Tensor: Scores, channel 0 background, shape (K + 1, H, W).
    """
    if cams.dim() != 3:
        raise ValueError(f'cams must be (K, H, W), got shape '
                         f'{tuple(cams.shape)}')
    if not alpha > 0:
        raise ValueError(f'alpha must be > 0, got {alpha!r}')
    cams = cams.float()
    peak = cams.amax(dim=0, keepdim=True) if cams.shape[0] else \
        cams.new_zeros((1, *cams.shape[1:]))  # (1, H, W)
    scores = torch.cat([(1 - peak).clamp(min=0).pow(alpha), cams])
    if crf is not None:
        if image is None:
            raise ValueError('a crf needs the image')
        refined = crf(image, scores)
        if tuple(refined.shape) != tuple(scores.shape):
            raise ValueError(f'crf returned shape {tuple(refined.shape)}, '
                             f'expected {tuple(scores.shape)}')
        scores = torch.as_tensor(refined, dtype=torch.float32,
                                 device=scores.device)
    return scores  # (K + 1, H, W)


def confident_label_map(scores_low: torch.Tensor,
                        scores_high: torch.Tensor,
                        labels: Optional[torch.Tensor] = None,
                        stride: int = 8,
                        ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Confident foreground / background at stride 8, the rest ignored.

    psa ``VOC12AffDataset.__getitem__`` after its transforms.

    Args:
        scores_low (Tensor): Low-alpha scores (background first), shape
            (K + 1, H, W), after any crop / flip.
        scores_high (Tensor): High-alpha scores, shape (K + 1, H, W).
        labels (Tensor, optional): Class indices of the K maps, shape (K,);
            foreground labels are ``labels[k] + 1``. Defaults to None:
            ``k + 1``.
        stride (int): Pooling stride. Defaults to 8. 1 skips the pooling.
        ignore_index (int): Value of unconfident positions. Defaults to
            255.

    Returns:
        Tensor: int64 label map, shape (ceil(H / stride), ceil(W /
        stride)): 0 background, a class label, or ``ignore_index``.
    """
    if scores_low.dim() != 3 or scores_low.shape != scores_high.shape:
        raise ValueError(
            'scores_low and scores_high must both be (K + 1, H, W), got '
            f'{tuple(scores_low.shape)} and {tuple(scores_high.shape)}')
    num_fg = scores_low.shape[0] - 1
    if labels is None:
        labels = torch.arange(num_fg)
    labels = torch.as_tensor(labels, dtype=torch.long,
                             device=scores_low.device).reshape(-1)
    if labels.numel() != num_fg:
        raise ValueError(f'{labels.numel()} labels for {num_fg} class maps')
    if num_fg and (labels.min() < 0 or labels.max() + 1 >= ignore_index):
        raise ValueError(f'labels {labels.tolist()} must lie in [0, '
                         f'{ignore_index - 1})')
    pooled = pool_scores(torch.cat([scores_low, scores_high]), stride)
    low, high = pooled[:num_fg + 1], pooled[num_fg + 1:]  # (K + 1, h, w)
    no_score = pooled.amax(dim=0) < NO_SCORE_EPS  # (h, w)
    arg_low = low.argmax(dim=0)  # (h, w)
    values = torch.cat([labels.new_tensor([ignore_index]), labels + 1])
    label = values[arg_low]  # bg of the low alpha -> ignored
    label[high.argmax(dim=0) == 0] = 0
    label[no_score] = ignore_index
    return label


def cam_to_affinity_label(cams: torch.Tensor,
                          labels: Optional[torch.Tensor] = None,
                          alpha_low: float = 4.0,
                          alpha_high: float = 32.0,
                          crf: Optional[CRF] = None,
                          image: Optional[torch.Tensor] = None,
                          stride: int = 8,
                          ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """CAM -> confident label map at stride 8 (no crop in between).

    :func:`background_scores` with both alphas, then
    :func:`confident_label_map`.

    Args:
        cams (Tensor): Normalised CAMs of the labelled classes (K, H, W).
        labels (Tensor, optional): Their class indices (K,).
        alpha_low (float): Defaults to 4 (psa).
        alpha_high (float): Defaults to 32 (psa).
        crf (callable, optional): See :func:`background_scores`.
        image (Tensor, optional): (H, W, 3) uint8, for ``crf``.
        stride (int): Defaults to 8.
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: int64, shape (ceil(H / stride), ceil(W / stride)).
    """
    if not 0 < alpha_low < alpha_high:
        raise ValueError('expected 0 < alpha_low < alpha_high, got '
                         f'{alpha_low} and {alpha_high}')
    low = background_scores(cams, alpha_low, crf, image)
    high = background_scores(cams, alpha_high, crf, image)
    return confident_label_map(low, high, labels, stride, ignore_index)


def affinity_pair_labels(
        label: torch.Tensor,
        offsets: Offsets,
        ignore_index: int = IGNORE_INDEX
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """bg / fg / neg label of each pair (psa ExtractAffinityLabelInRadius).

    Args:
        label (Tensor): Label map(s) at the affinity resolution, shape
            (..., h, w): 0 background, other values classes,
            ``ignore_index`` ignored.
        offsets (Sequence[tuple[int, int]]): From
            :func:`~.random_walk.radius_offsets`.
        ignore_index (int): Defaults to 255.

    Returns:
        tuple[Tensor, Tensor, Tensor]: float32 0/1 masks ``bg`` (both ends
        background), ``fg`` (both ends the same class), ``neg`` (both ends
        labelled, different labels), each of shape (..., P, h', w') in the
        layout of :func:`~.random_walk.pair_affinity`.
    """
    height, width = label.shape[-2:]
    hc, wc, left = pair_grid(height, width, offsets)
    source = label[..., :hc, left:left + wc]  # (..., h', w')
    target = torch.stack([
        label[..., dy:dy + hc, left + dx:left + dx + wc]
        for dy, dx in offsets
    ], dim=-3)  # (..., P, h', w')
    source = source.unsqueeze(-3)  # (..., 1, h', w')
    valid = (source != ignore_index) & (target != ignore_index)
    same = source == target
    bg = same & (source == 0)
    fg = same & (source != 0) & valid
    neg = ~same & valid
    return bg.float(), fg.float(), neg.float()
