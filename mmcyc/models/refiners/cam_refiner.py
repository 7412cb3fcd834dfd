# Copyright (c) mmcyc contributors. All rights reserved.
"""CAM refinement with CyCSNet (stage 3, paper Sect. 3.3, Eq. 14, Alg. 2)."""
from collections import Counter
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ..utils.cam import grid_stride
from ..utils.cam_refinement import refine_cam
from .feature_bank import FeatureBank, seeded_generator

BANK_DEVICES = ('auto', 'cpu')


def bank_placement(device: torch.device, bank_bytes: int, mode: str,
                   fraction: float, free_bytes: Optional[int] = None) -> str:
    """Where a feature bank serves the targets refined on ``device``.

    Args:
        device (torch.device): The device F's features (and the work of
            Eq. 14) are on.
        bank_bytes (int): The bank's size (:attr:`FeatureBank.nbytes`).
        mode (str): ``'auto'`` or ``'cpu'`` (see :class:`CAMRefiner`).
        fraction (float): Largest share of the device's free memory the
            bank may take.
        free_bytes (int, optional): Free memory of ``device``; read from
            ``torch.cuda.mem_get_info`` when None.

    Returns:
        str: ``'device'`` (move the bank there), ``'pinned'`` (keep it on
        the CPU, gather into page-locked memory, copy asynchronously) or
        ``'cpu'`` (as on a CPU-only machine: gather and copy).
    """
    if device.type != 'cuda' or mode == 'cpu':
        return 'cpu'  # a CPU run keeps the bank where it is, as before
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    return 'device' if bank_bytes <= fraction * free_bytes else 'pinned'


@MODELS.register_module()
class CAMRefiner(BaseModule):
    """Revise a target's CAM with N same-class training images (Eq. 14).

    For a target t, N training images s whose labels intersect ``y_t`` are
    sampled; their CyCSNet vectors where ``C^s_c > beta1`` (c in ``y_t`` and
    ``y_s``) give similarity maps ``W^f`` on ``F_t`` (Eq. 3-4), and
    ``C^t_c <- max(C^t_c, epsilon W^f)`` where ``W^f > Bg / epsilon``
    (Eq. 14). The vectors come from a :class:`FeatureBank` computed once for
    the whole training set instead of N forward passes per target (see the
    bank's docstring for how its sampling relates to the paper's).

    Resolutions follow AffinityNet's (psa's) alignment of the stride-s
    feature grid (h, w) with the image (H, W): the image padded at the
    bottom / right to a multiple of s, cell (i, j) covering the pixels
    ``[s i, s i + s) x [s j, s j + s)``. A bank image's CAM comes to its
    grid by averaging each cell's pixels
    (:func:`~mmcyc.models.utils.cam.cam_to_grid`); the target's ``W^f``
    goes to its CAM's (H, W) by giving every pixel its cell's value
    (:func:`~mmcyc.models.utils.cam.grid_to_pixels`). Because that
    replication commutes with the maximum over the references and with the
    threshold, the batched per-class maximum is exactly Eq. 14 applied
    reference by reference at (H, W). s is inferred from the sizes (8 for
    ResNet-38 once the grid has 8 cells a side); sizes that no stride fits
    are a ValueError.

    Call order::

        refiner = MODELS.build(dict(type='CAMRefiner', ...))
        refiner.set_bank(bank)     (the loop builds or loads the bank:
                                    mmcyc.apis.cached_feature_bank)
        for each target t:
            refiner.refine(cam_t, feat_t, labels_t, name_t)
                sample_references (N images, seed, name_t)
                -> bank.gather (classes of y_t)       -> V, classes (S, D)
                -> refine_cam: similarity_maps (Eq. 3-4)
                               -> class_refinement_maps (max per class)
                               -> apply_refinement (Eq. 14)

    A class of ``y_t`` for which no sampled image has a reference vector
    (no bank image has it, or none above ``beta1`` in the sampled ones) is
    left unchanged; such classes are counted in ``missing_refs`` (class ->
    number of targets) and logged once per class.

    Args:
        num_refs (int): N, images sampled per target, >= 0; 0 leaves the CAM
            unchanged. Defaults to 128 (paper, with random walk; 16 without).
        alpha (float): Softmax scale of Eq. 4, > 0. Defaults to 20.0 (as in
            training).
        beta1 (float): CAM threshold selecting the reference vectors, in
            [0, 1). Defaults to 0.3 (paper).
        epsilon (float): ``epsilon`` of Eq. 14, > 0. Defaults to 2.0 (paper).
        bg_score (float): ``Bg`` of Eq. 14, >= 0. Defaults to 0.2 (paper).
        max_vectors_per_image (int, optional): K, the bank keeps at most K
            vectors per (image, class) (a seeded random subset), >= 1; None
            keeps all (identical to recomputing per target). Defaults to 64.
        seed (int): Seed of the bank subsets and of the per-target sampling.
            Defaults to 0.
        chunk_size (int, optional): Reference vectors per batched product;
            None for all at once. Defaults to 4096.
        bank_device (str): Where the bank is read from when the features
            are on a GPU: ``'auto'`` (default) moves it to that GPU at the
            first target if it takes at most ``bank_memory_fraction`` of the
            free memory there (each target's vectors are then gathered on
            the GPU, no copy), else keeps it on the CPU and gathers each
            target's vectors into page-locked memory, copied to the GPU
            asynchronously; ``'cpu'`` keeps the bank on the CPU with
            ordinary copies. With features on the CPU the bank stays there
            whatever the value, as before. The refined CAMs are the same
            wherever the bank is (see :func:`bank_placement`).
        bank_memory_fraction (float): Largest share of the GPU's free
            memory the bank may take with ``'auto'``, in (0, 1]. Defaults to
            0.5: the VOC bank (~4.2 GB at K = 64) fits any training GPU with
            room for F's forward passes.
        init_cfg (dict, optional): Unused (no parameters).
    """

    def __init__(self,
                 num_refs: int = 128,
                 alpha: float = 20.0,
                 beta1: float = 0.3,
                 epsilon: float = 2.0,
                 bg_score: float = 0.2,
                 max_vectors_per_image: Optional[int] = 64,
                 seed: int = 0,
                 chunk_size: Optional[int] = 4096,
                 bank_device: str = 'auto',
                 bank_memory_fraction: float = 0.5,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_refs, int) or num_refs < 0:
            raise ValueError(f'num_refs must be an int >= 0, got {num_refs!r}')
        if not alpha > 0:
            raise ValueError(f'alpha must be > 0, got {alpha!r}')
        if not 0 <= beta1 < 1:
            raise ValueError(f'beta1 must be in [0, 1), got {beta1!r}')
        if not epsilon > 0:
            raise ValueError(f'epsilon must be > 0, got {epsilon!r}')
        if not bg_score >= 0:
            raise ValueError(f'bg_score must be >= 0, got {bg_score!r}')
        if max_vectors_per_image is not None and (
                not isinstance(max_vectors_per_image, int)
                or max_vectors_per_image < 1):
            raise ValueError('max_vectors_per_image must be an int >= 1 or '
                             f'None, got {max_vectors_per_image!r}')
        if not isinstance(seed, int):
            raise ValueError(f'seed must be an int, got {seed!r}')
        if chunk_size is not None and (not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ValueError('chunk_size must be an int >= 1 or None, got '
                             f'{chunk_size!r}')
        if bank_device not in BANK_DEVICES:
            raise ValueError(f'bank_device must be one of {BANK_DEVICES}, '
                             f'got {bank_device!r}')
        if not 0 < bank_memory_fraction <= 1:
            raise ValueError('bank_memory_fraction must be in (0, 1], got '
                             f'{bank_memory_fraction!r}')
        self.bank_device = bank_device
        self.bank_memory_fraction = float(bank_memory_fraction)
        self.num_refs = num_refs
        self.alpha = float(alpha)
        self.beta1 = float(beta1)
        self.epsilon = float(epsilon)
        self.bg_score = float(bg_score)
        self.max_vectors_per_image = max_vectors_per_image
        self.seed = seed
        self.chunk_size = chunk_size
        self.bank: Optional[FeatureBank] = None
        # (device the bank serves, 'device' | 'pinned' | 'cpu')
        self._bank_place: Optional[tuple] = None
        self.missing_refs: Counter = Counter()

    def bank_meta(self) -> dict:
        """The settings a bank must have been built with to serve here."""
        return dict(
            beta1=self.beta1,
            max_vectors_per_image=self.max_vectors_per_image,
            seed=self.seed)

    def set_bank(self, bank: FeatureBank) -> None:
        """Use ``bank``, checking that it was built with this refiner's
        ``beta1``, ``max_vectors_per_image`` and ``seed``."""
        wrong = {
            k: (bank.meta.get(k), v)
            for k, v in self.bank_meta().items() if bank.meta.get(k) != v
        }
        if wrong:
            raise ValueError(
                'the feature bank was built with other settings (bank, '
                f'refiner): {wrong}; rebuild it')
        self.bank = bank
        self._bank_place = None

    def place_bank(self, device) -> str:
        """Put the bank where targets refined on ``device`` read it.

        :meth:`refine` calls it at the first target (and when the device
        changes); call it earlier to log the choice. See ``bank_device``.

        Args:
            device (torch.device | str): The device of F's features.

        Returns:
            str: ``'device'``, ``'pinned'`` or ``'cpu'``.
        """
        if self.bank is None:
            raise RuntimeError('no feature bank: set one with set_bank '
                               '(mmcyc.apis.cached_feature_bank builds one) '
                               'first')
        device = torch.device(device)
        where = bank_placement(device, self.bank.nbytes, self.bank_device,
                               self.bank_memory_fraction)
        self.bank.to(device if where == 'device' else 'cpu')
        self._bank_place = (device, where)
        return where

    # ------------------------------------------------------------------ #
    def _check_target(self, cam_t: torch.Tensor, feat_t: torch.Tensor,
                      labels_t: torch.Tensor, target_name: str) -> None:
        if cam_t.dim() != 3 or feat_t.dim() != 3 or \
                labels_t.shape != cam_t.shape[:1]:
            raise ValueError(
                f'{target_name}: expected cam (C, H, W), feat (D, h, w) and '
                f'labels (C, ), got {tuple(cam_t.shape)}, '
                f'{tuple(feat_t.shape)} and {tuple(labels_t.shape)}')
        try:
            grid_stride(cam_t.shape[1:], feat_t.shape[1:])
        except ValueError as err:
            raise ValueError(f'{target_name}: {err}') from None
        if not bool((labels_t > 0.5).any()):
            raise ValueError(
                f'target image {target_name} has no class in its label: '
                'refinement needs at least one foreground class')
        if self.bank is None:
            raise RuntimeError('no feature bank: set one with set_bank '
                               '(mmcyc.apis.cached_feature_bank builds one) '
                               'before refine')
        if cam_t.shape[0] != self.bank.num_classes:
            raise ValueError(
                f'{target_name}: cam has {cam_t.shape[0]} classes, the bank '
                f'{self.bank.num_classes}')
        if feat_t.shape[0] != self.bank.channels:
            raise ValueError(
                f'{target_name}: features have {feat_t.shape[0]} channels, '
                f'the bank {self.bank.channels} (same CyCSNet checkpoint?)')

    def sample_references(self, labels_t: torch.Tensor,
                          target_name: str) -> torch.Tensor:
        """N bank images s != t whose labels intersect ``y_t``.

        Drawn without replacement by a generator seeded by (seed, target
        name), so a target gets the same images in every run and on every
        rank. When fewer than N images qualify, all of them are used.
        (Alg. 2 draws from the training set until N images qualify, so it
        may draw an image twice; a repeat adds nothing to Eq. 14's maximum,
        so distinct images are used instead.)

        Args:
            labels_t (Tensor): Multi-hot ``y_t``, shape (C, ).
            target_name (str): The target's name (also excluded from the
                candidates when it is in the bank).

        Returns:
            Tensor: Sorted bank indices, shape (min(N, #candidates), ),
            int64.
        """
        present = labels_t.detach().cpu() > 0.5  # (C, )
        candidate = (self.bank.labels & present).any(dim=1)  # (M, )
        own = self.bank.index_of(target_name)
        if own is not None:
            candidate[own] = False
        candidates = torch.nonzero(candidate).flatten()  # (M', )
        generator = seeded_generator(self.seed, 'refs/' + target_name)
        pick = torch.randperm(len(candidates), generator=generator)
        return candidates[pick[:self.num_refs]].sort().values  # (n, )

    def refine(self, cam_t: torch.Tensor, feat_t: torch.Tensor,
               labels_t: torch.Tensor, target_name: str) -> torch.Tensor:
        """Refine one target's CAM (Eq. 14 over all sampled references).

        Args:
            cam_t (Tensor): Normalised CAM ``C^t``, shape (C, H, W).
            feat_t (Tensor): CyCSNet features ``F_t``, shape (D, h, w), on
                a grid of (H, W) (see the class docstring); the work runs on
                their device.
            labels_t (Tensor): Multi-hot ``y_t``, shape (C, ).
            target_name (str): Name of t: seeds the sampling, names t in
                errors.

        Returns:
            Tensor: Refined CAM, shape (C, H, W) on ``cam_t``'s device; not
            below ``cam_t`` anywhere, changed only in classes of ``y_t``.

        Raises:
            ValueError: If ``labels_t`` has no class (naming the image), or
                (H, W) does not lie on the (h, w) grid (naming the shapes).
        """
        self._check_target(cam_t, feat_t, labels_t, target_name)
        if self.num_refs == 0:
            return cam_t.clone()
        device = feat_t.device
        if self._bank_place is None or self._bank_place[0] != device:
            self.place_bank(device)
        images = self.sample_references(labels_t, target_name)  # (n, )
        present = labels_t.detach().cpu() > 0.5  # (C, )
        vectors, classes = self.bank.gather(
            images, present,
            pin_memory=self._bank_place[1] == 'pinned')  # (S, D), (S, )
        found = torch.bincount(
            classes.cpu(), minlength=len(present))[:len(present)] > 0
        for cls in torch.nonzero(present & ~found).flatten().tolist():
            self.missing_refs[cls] += 1
            if self.missing_refs[cls] == 1:
                print_log(
                    f'CAMRefiner: no reference vector of class {cls} for '
                    f'{target_name} (none of its {len(images)} sampled '
                    'images has one above beta1); the class is left '
                    'unchanged (counted in missing_refs)',
                    logger='current', level=30)
        refined = refine_cam(
            cam_t.to(device), feat_t, vectors.to(device, non_blocking=True),
            classes.to(device),
            labels_t.to(device), self.alpha, self.epsilon, self.bg_score,
            self.chunk_size)
        return refined.to(cam_t.device)

    def forward(self, cam_t: torch.Tensor, feat_t: torch.Tensor,
                labels_t: torch.Tensor, target_name: str) -> torch.Tensor:
        """Alias of :meth:`refine`."""
        return self.refine(cam_t, feat_t, labels_t, target_name)
