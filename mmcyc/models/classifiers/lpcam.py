# Copyright (c) mmcyc contributors. All rights reserved.
"""LPCAM: class maps from clustered local prototypes of the classifier's
features (Chen & Sun, "Extracting Class Activation Maps from
Non-Discriminative Features as well", CVPR 2023,
https://arxiv.org/abs/2303.10334, code github.com/zhaozhengChen/LPCAM)."""
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmseg.registry import MODELS

from mmcyc.utils import checked_settings
from ..refiners.feature_bank import seeded_generator
from ..utils.cosine_kmeans import KMEANS_INITS, cosine_kmeans
from .cam_classifier import CAMClassifier, SampleList

MISSING_PROTOTYPE_RULES = ('error', 'most_confident')


def prototype_probabilities(centres: torch.Tensor,
                            weight: torch.Tensor) -> torch.Tensor:
    """Each class's own probability of its prototypes under the classifier.

    ``softmax(centres @ W^T)`` over the C classes, read at the class the
    centres were clustered for (LPCAM's prototype test).

    Args:
        centres (Tensor): Centres of class c's vectors in row c, shape
            (C, K, D).
        weight (Tensor): Classifier weight W, shape (C, D) or (C, D, 1, 1).

    Returns:
        Tensor: ``p[c, k] = softmax(centres[c, k] @ W^T)[c]``, shape (C, K).
    """
    weight = weight.reshape(weight.shape[0], -1).to(centres)  # (C, D)
    probs = torch.einsum('ckd,jd->ckj', centres, weight).softmax(dim=2)
    index = torch.arange(centres.shape[0], device=centres.device)
    return probs[index, :, index]  # (C, K)


def select_prototypes(probs: torch.Tensor,
                      centre_mask: torch.Tensor,
                      low: float,
                      high: Optional[float] = None) -> torch.Tensor:
    """The valid centres with ``low < p < high`` (no upper bound for None).

    LPCAM keeps class prototypes with ``p > 0.9`` and context prototypes
    with ``0.05 < p < 0.9``.

    Args:
        probs (Tensor): :func:`prototype_probabilities`, shape (C, K).
        centre_mask (Tensor): Valid centres, shape (C, K), bool.
        low (float): Exclusive lower bound.
        high (float, optional): Exclusive upper bound. Defaults to None.

    Returns:
        Tensor: Selected prototypes, shape (C, K), bool.
    """
    keep = centre_mask & (probs > low)
    return keep if high is None else keep & (probs < high)


def lpcam_map(features: torch.Tensor,
              class_prototypes: torch.Tensor,
              class_mask: torch.Tensor,
              context_prototypes: torch.Tensor,
              context_mask: torch.Tensor) -> torch.Tensor:
    """LPCAM's map of every class at every position of a feature map.

    ``A_c(x) = ReLU(mean_k cos(f(x), P_ck) - mean_j cos(f(x), Q_cj))`` over
    the valid class prototypes P_c and context prototypes Q_c; a class
    without context prototypes has no second term, and a class without
    class prototypes gets 0. The public code applies the ReLU only with a
    context term; on ReLU features (ResNet-38's, its ResNet-50's) every
    cosine is >= 0, so the two rules agree, and with signed features ours
    keeps an all-negative map from flipping sign under Eq. 2's division by
    the maximum. The mean of cosines is a product with the mean unit
    prototype, ``f^ . mean_k P^_ck``, computed so: one (C, D) matrix per
    term.

    Args:
        features (Tensor): Feature map, shape (N, D, h, w).
        class_prototypes (Tensor): Padded, shape (C, K, D).
        class_mask (Tensor): Valid class prototypes, shape (C, K), bool.
        context_prototypes (Tensor): Padded, shape (C, K', D).
        context_mask (Tensor): Valid context prototypes, shape (C, K').

    Returns:
        Tensor: Maps, shape (N, C, h, w), fp32.
    """
    unit = F.normalize(features.float(), dim=1)  # (N, D, h, w)

    def mean_direction(protos, mask):  # (C, K, D) -> (C, D)
        mask = mask.to(unit)[..., None]  # (C, K, 1)
        total = (F.normalize(protos.to(unit), dim=2) * mask).sum(dim=1)
        return total / mask.sum(dim=1).clamp(min=1)

    cls_term = torch.einsum('ndhw,cd->nchw', unit,
                            mean_direction(class_prototypes, class_mask))
    ctx_term = torch.einsum('ndhw,cd->nchw', unit,
                            mean_direction(context_prototypes, context_mask))
    has_class = class_mask.any(dim=1).to(unit)[None, :, None, None]
    # no context prototype: ctx_term = 0
    return F.relu(cls_term - ctx_term) * has_class  # (N, C, h, w)


@MODELS.register_module()
class LPCAM(CAMClassifier):
    """A stage-1 classifier whose maps are LPCAM's prototype similarities.

    The backbone and the 1x1 classifier are :class:`CAMClassifier`'s (a
    stage-1 checkpoint loads into them); the prototypes are buffers, padded
    to ``(C, K, D)`` with masks, so an LPCAM checkpoint (classifier weights
    + prototypes, written by ``mmcyc.apis.fit_lpcam``) loads strictly into
    ``tools/test.py``. ``predict`` is the classifier's (scales, flips,
    label masking, Eq. 2 normalisation, CAM files in the one on-disk
    format, pseudo masks) with LPCAM's map at each scale.

    Call order::

        fit (mmcyc.apis.fit_lpcam): class / context vectors of each class
            (CAM_c > fit_cfg.cam_thr / below it, seeded cap per set)
            -> fit_prototypes: cosine_kmeans of each set (K clusters)
            -> prototype_probabilities -> select_prototypes
            (class: p_c > class_thr; context: within context_thr)
            -> prototype buffers
        forward(mode='tensor')  : cam: extract_feat -> lpcam_map
        forward(mode='predict') : CAMClassifier.predict, whose per-scale
            maps come from cam with the features of each scale summed with
            those of its flipped pass before lpcam_map (LPCAM's
            ``make_lpcam``); maps summed over scales (= averaged, once
            normalised)

    Note:
        ``CAMClassifier.predict`` sends ``[image, flipped image]`` as one
        batch to :meth:`cam` and adds the two results (the second flipped
        back). While :meth:`predict` runs with ``test_cfg.flip``, :meth:`cam`
        returns the map of the fused features ``f + flip(f_flipped)`` in the
        first half and zeros in the second, so that sum is LPCAM's map.

    Args:
        fit_cfg (dict, optional): Prototype fitting settings:
            ``num_clusters`` (K, 12), ``cam_thr`` (0.1: a position is in
            class c's set where the stage-1 CAM_c, nearest-resized to the
            feature grid, exceeds it, in its context set where below),
            ``scale`` (1.0: image scale of the fitting features, no flip),
            ``max_vectors`` (8192: seeded uniform subsample per (class,
            set)), ``class_thr`` (0.9), ``context_thr`` ((0.05, 0.9)),
            ``max_iters`` (100), ``tol`` (1e-4, relative centre shift),
            ``init`` ('k-means++'), ``seed`` (0),
            ``missing_class_prototype`` ('error' or 'most_confident': keep
            the class's most confident centre, with a warning; see
            :meth:`fit_prototypes`),
            ``max_batch_elements`` (2**28: classes clustered together while
            B x N x D stays within it).
        **kwargs: :class:`CAMClassifier`'s arguments.
    """

    PROTOTYPE_BUFFERS = ('class_prototypes', 'class_prototype_mask',
                         'context_prototypes', 'context_prototype_mask')

    def __init__(self, fit_cfg: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        self.fit_cfg = self._check_fit_cfg(fit_cfg)
        shape = (self.num_classes, self.fit_cfg['num_clusters'])
        self.register_buffer('class_prototypes',
                             torch.zeros(*shape, self.in_channels))
        self.register_buffer('class_prototype_mask',
                             torch.zeros(shape, dtype=torch.bool))
        self.register_buffer('context_prototypes',
                             torch.zeros(*shape, self.in_channels))
        self.register_buffer('context_prototype_mask',
                             torch.zeros(shape, dtype=torch.bool))
        self._fuse_flip = False

    @staticmethod
    def _check_fit_cfg(cfg: Optional[dict]) -> dict:
        cfg = checked_settings(
            dict(num_clusters=12, cam_thr=0.1, scale=1.0, max_vectors=8192,
                 class_thr=0.9, context_thr=(0.05, 0.9), max_iters=100,
                 tol=1e-4, init='k-means++', seed=0,
                 missing_class_prototype='error',
                 max_batch_elements=2**28), cfg, 'fit_cfg')
        low, high = cfg['context_thr']
        checks = [
            (cfg['num_clusters'] >= 1, 'num_clusters >= 1'),
            (cfg['scale'] > 0, 'scale > 0'),
            (cfg['max_vectors'] >= cfg['num_clusters'],
             'max_vectors >= num_clusters'),
            (0 <= cfg['class_thr'] < 1, '0 <= class_thr < 1'),
            (0 <= low < high <= 1, 'context_thr (low, high), 0 <= low < high'
             ' <= 1'),
            (cfg['max_iters'] >= 1, 'max_iters >= 1'),
            (cfg['init'] in KMEANS_INITS, f'init in {KMEANS_INITS}'),
            (cfg['missing_class_prototype'] in MISSING_PROTOTYPE_RULES,
             f'missing_class_prototype in {MISSING_PROTOTYPE_RULES}'),
        ]
        for ok, expected in checks:
            if not ok:
                raise ValueError(f'fit_cfg: expected {expected}, got {cfg}')
        return cfg

    # ------------------------------------------------------------------ #
    def _check_fitted(self) -> None:
        if not self.class_prototype_mask.any():
            raise RuntimeError(
                'LPCAM has no prototypes: fit them with tools/fit_lpcam.py '
                'and test the checkpoint it writes')

    def cam(self, inputs: torch.Tensor) -> torch.Tensor:
        """LPCAM maps (:func:`lpcam_map`) of normalised inputs.

        Args:
            inputs (Tensor): Images, shape (N, 3, H, W); while
                :meth:`predict` runs with flips, ``[images, flipped]``
                (N = 2n, see the class note).

        Returns:
            Tensor: Un-normalised maps, shape (N, C, h, w).
        """
        self._check_fitted()
        feats = self.extract_feat(inputs)  # (N, D, h, w)
        if self._fuse_flip:
            n = feats.shape[0] // 2
            feats = feats[:n] + feats[n:].flip(-1)  # (n, D, h, w)
        maps = lpcam_map(feats, self.class_prototypes,
                         self.class_prototype_mask, self.context_prototypes,
                         self.context_prototype_mask)
        if self._fuse_flip:
            maps = torch.cat([maps, torch.zeros_like(maps)])  # (2n, C, h, w)
        return maps

    @contextmanager
    def _fused_flips(self, enabled: bool):
        self._fuse_flip = enabled
        try:
            yield
        finally:
            self._fuse_flip = False

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[SampleList] = None) -> SampleList:
        """:meth:`CAMClassifier.predict` with LPCAM maps (class note)."""
        with self._fused_flips(self.test_cfg['flip']):
            return super().predict(inputs, data_samples)

    # ------------------------------------------------------------------ #
    def _cluster(self, sets: Sequence[torch.Tensor], kind: str,
                 names: Sequence[str]):
        """``cosine_kmeans`` of every class's set, classes batched while
        B x N x D stays within ``max_batch_elements``.

        Returns:
            tuple[Tensor, Tensor, list[dict]]: centres (C, K, D), centre
            mask (C, K), per class ``iterations`` / ``shift`` /
            ``converged``.
        """
        cfg = self.fit_cfg
        num_clusters = cfg['num_clusters']
        device = self.classifier.weight.device
        centres = torch.zeros(len(sets), num_clusters, self.in_channels,
                              device=device)
        centre_mask = torch.zeros(len(sets), num_clusters, dtype=torch.bool,
                                  device=device)
        stats: List[dict] = []
        start = 0
        while start < len(sets):
            stop = start + 1
            longest = len(sets[start])
            while stop < len(sets) and (stop + 1 - start) * max(
                    longest, len(sets[stop])) * self.in_channels <= \
                    cfg['max_batch_elements']:
                longest = max(longest, len(sets[stop]))
                stop += 1
            chunk = range(start, stop)
            points = torch.zeros(len(chunk), longest, self.in_channels,
                                 device=device)
            mask = torch.zeros(len(chunk), longest, dtype=torch.bool,
                               device=device)
            for row, c in enumerate(chunk):
                points[row, :len(sets[c])] = sets[c].to(points)
                mask[row, :len(sets[c])] = True
            result = cosine_kmeans(
                points, num_clusters, mask, max_iters=cfg['max_iters'],
                tol=cfg['tol'], init=cfg['init'],
                generator=[
                    seeded_generator(cfg['seed'], f'lpcam/{kind}/{c}')
                    for c in chunk
                ],
                names=[f'the {kind} set of class {names[c]}' for c in chunk])
            centres[start:stop] = result.centres
            centre_mask[start:stop] = result.centre_mask
            stats += [
                dict(iterations=int(result.iterations[row]),
                     shift=float(result.shift[row]),
                     converged=bool(result.converged[row]))
                for row in range(len(chunk))
            ]
            start = stop
        return centres, centre_mask, stats

    @torch.no_grad()
    def fit_prototypes(self,
                       class_feats: Sequence[torch.Tensor],
                       context_feats: Sequence[torch.Tensor],
                       class_names: Optional[Sequence[str]] = None
                       ) -> List[Dict]:
        """Cluster each class's two sets and keep LPCAM's prototypes.

        Fills the prototype buffers: class prototypes are the centres of
        class c's class set with ``p_c > class_thr``, context prototypes
        the centres of its context set with ``p_c`` within ``context_thr``
        (:func:`prototype_probabilities`). A class none of whose class-set
        centres passes ``class_thr`` raises (``missing_class_prototype=
        'error'``, the default: its map would be undefined, and on VOC it
        means a broken classifier or CAM folder) or keeps its most
        confident centre with a warning (``'most_confident'``, for small
        from-scratch models whose softmax is rarely that sure). So does a
        class with an empty class set (no labelled image, or all-zero
        CAMs); under ``'most_confident'`` it is left without prototypes,
        with a warning: its map is 0, as its CAM was.

        Args:
            class_feats (Sequence[Tensor]): Per class c, its class-set
                vectors, shape (N_c, D).
            context_feats (Sequence[Tensor]): Per class, its context-set
                vectors, shape (M_c, D).
            class_names (Sequence[str], optional): Names for messages.
                Defaults to the class indices.

        Returns:
            list[dict]: Per class: set sizes, kept prototypes, their
            probabilities, k-means iterations / shift / convergence.

        Raises:
            ValueError: Naming the class, when its class set is empty or
                no centre passes ``class_thr`` (rule 'error').
        """
        num_classes = self.num_classes
        names = [str(c) for c in range(num_classes)] \
            if class_names is None else list(class_names)
        if not len(class_feats) == len(context_feats) == len(names) == \
                num_classes:
            raise ValueError(f'expected {num_classes} class sets, context '
                             f'sets and names, got {len(class_feats)}, '
                             f'{len(context_feats)} and {len(names)}')
        logger = MMLogger.get_current_instance()
        fallback = self.fit_cfg['missing_class_prototype'] != 'error'
        for c, feats in enumerate(class_feats):
            if len(feats) == 0:
                message = (
                    f'class {names[c]} has no vector above the CAM threshold'
                    f' {self.fit_cfg["cam_thr"]}: no image of the fitting '
                    'split is labelled with it, or its CAMs are empty')
                if not fallback:
                    raise ValueError(message)
                logger.warning(message + '; it gets no prototype (a zero '
                               'map, as its CAM)')
        cfg = self.fit_cfg
        weight = self.classifier.weight
        cls_centres, cls_valid, cls_stats = self._cluster(
            class_feats, 'class', names)
        ctx_centres, ctx_valid, ctx_stats = self._cluster(
            context_feats, 'context', names)
        cls_probs = prototype_probabilities(cls_centres, weight)  # (C, K)
        ctx_probs = prototype_probabilities(ctx_centres, weight)
        cls_keep = select_prototypes(cls_probs, cls_valid, cfg['class_thr'])
        ctx_keep = select_prototypes(ctx_probs, ctx_valid,
                                     *cfg['context_thr'])
        for c in torch.nonzero(~cls_keep.any(dim=1)
                               & cls_valid.any(dim=1)).flatten().tolist():
            best = cls_probs[c].masked_fill(~cls_valid[c], -1).argmax()
            message = (f'class {names[c]}: no class-set centre has p_c > '
                       f'{cfg["class_thr"]} (best {cls_probs[c, best]:.3f})')
            if cfg['missing_class_prototype'] == 'error':
                raise ValueError(
                    message + "; set fit_cfg.missing_class_prototype="
                    "'most_confident' to keep the best one instead")
            logger.warning(message + '; its most confident centre is kept')
            cls_keep[c, best] = True
        self.class_prototypes.copy_(cls_centres * cls_keep[..., None])
        self.class_prototype_mask.copy_(cls_keep)
        self.context_prototypes.copy_(ctx_centres * ctx_keep[..., None])
        self.context_prototype_mask.copy_(ctx_keep)
        return [
            dict(class_name=names[c],
                 class_vectors=len(class_feats[c]),
                 context_vectors=len(context_feats[c]),
                 class_prototypes=int(cls_keep[c].sum()),
                 context_prototypes=int(ctx_keep[c].sum()),
                 class_probs=[round(float(p), 4)
                              for p in cls_probs[c][cls_valid[c]]],
                 context_probs=[round(float(p), 4)
                                for p in ctx_probs[c][ctx_valid[c]]],
                 kmeans_class=cls_stats[c], kmeans_context=ctx_stats[c])
            for c in range(num_classes)
        ]
