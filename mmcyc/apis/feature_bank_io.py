# Copyright (c) mmcyc contributors. All rights reserved.
"""Build, save and load the stage-3 feature bank (the file I/O around
:class:`~mmcyc.models.refiners.FeatureBank`, which only computes).

A build reads each bank image's stage-1 CAM, keeps F's vectors above beta1
(``FeatureBank.select``) and, with a part folder, saves every finished block
so that an interrupted build resumes; :func:`cached_feature_bank` reuses a
saved bank when it was made by the same refiner settings, images and
provenance (checkpoint, features, CAM folder), and refuses it otherwise.
"""
import os.path as osp
import shutil
from typing import List, Optional, Sequence

import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.utils import ProgressBar

from mmcyc.models.refiners import CAMRefiner, FeatureBank
from mmcyc.models.refiners.feature_bank import FeatureFn, seeded_generator
from mmcyc.utils import CAMStore, atomic_open


def save_feature_bank(bank: FeatureBank, path: str) -> None:
    """Write the bank to one ``.pth`` file atomically."""
    with atomic_open(path) as f:
        torch.save(bank.to_dict(), f)


def load_feature_bank(path: str) -> FeatureBank:
    """Read a bank written by :func:`save_feature_bank` (onto the CPU)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'feature bank file not found: {path}')
    return FeatureBank.from_dict(
        torch.load(path, map_location='cpu', weights_only=True), path)


def _build_block(features: FeatureFn, indices: Sequence[int],
                 names: List[str], labels: torch.Tensor,
                 cam_store: CAMStore, beta1: float,
                 max_vectors: Optional[int], seed: int,
                 progress: Optional[ProgressBar]) -> dict:
    vectors, image_index, classes = [], [], []
    for index, feat in zip(indices, features(indices)):
        size = None
        if isinstance(feat, (tuple, list)):
            feat, size = feat  # the feature map and its image's (H, W)
        if feat.dim() == 4 and feat.shape[0] == 1:
            feat = feat[0]
        cam = cam_store.load(names[index], labels.shape[1], size)
        vec, cls_ = FeatureBank.select(
            feat.detach(), cam, labels[index], beta1, max_vectors,
            seeded_generator(seed, 'bank/' + names[index]))
        half = vec.half().cpu()
        if not torch.isfinite(half).all():
            raise ValueError(
                f'features of {names[index]} overflow fp16 (|x| > 65504)')
        vectors.append(half)
        classes.append(cls_.cpu())
        image_index.append(torch.full((len(vec), ), index,
                                      dtype=torch.long))
        if progress is not None:
            progress.update()
    if len(vectors) != len(indices):
        raise ValueError(f'the feature function returned {len(vectors)} '
                         f'maps for {len(indices)} images')
    return dict(
        vectors=torch.cat(vectors), image_index=torch.cat(image_index),
        classes=torch.cat(classes))


def build_feature_bank(features: FeatureFn,
                       names: List[str],
                       labels: torch.Tensor,
                       cam_store: CAMStore,
                       beta1: float = 0.3,
                       max_vectors_per_image: Optional[int] = None,
                       seed: int = 0,
                       meta: Optional[dict] = None,
                       part_dir: Optional[str] = None,
                       block_size: int = 256,
                       progress: bool = False) -> FeatureBank:
    """Compute the bank from a feature function and the stage-1 CAMs.

    The images are processed in blocks of ``block_size``. With
    ``part_dir`` every block is saved there atomically as it finishes
    and existing blocks are read back, so an interrupted build resumes.
    In a distributed run (``part_dir`` required) rank r computes blocks
    r, r + world, ...; all ranks then load every block, so each returns
    the same bank (the selection of an image depends only on its own
    name and the seed, not on which rank made it).

    Args:
        features (callable): ``features(indices)`` yields F's feature
            map of each listed bank image in order, (D, h, w) or
            (1, D, h, w), or a ``(feature map, (H, W))`` pair: the
            image's size, which its CAM file must have (else an error
            naming the file).
        names (list[str]): Bank image names (their CAM files are
            ``cam_store`` keys).
        labels (Tensor): Multi-hot labels, shape (M, C).
        cam_store (CAMStore): The stage-1 CAMs.
        beta1 (float): CAM threshold. Defaults to 0.3.
        max_vectors_per_image (int, optional): K, cap per (image,
            class). Defaults to None (all).
        seed (int): Seed of the capped subsets. Defaults to 0.
        meta (dict, optional): Extra provenance stored in ``meta``.
        part_dir (str, optional): Where finished blocks are kept.
        block_size (int): Images per block. Defaults to 256.
        progress (bool): Show a progress bar (rank 0).

    Returns:
        FeatureBank: The bank (on the CPU).

    Raises:
        FileNotFoundError: Naming the CAM file of a bank image that has
            none.
    """
    labels = torch.as_tensor(labels).bool()
    if len(names) == 0:
        raise ValueError('a feature bank needs at least one image')
    rank, world_size = get_dist_info()
    if world_size > 1 and part_dir is None:
        raise ValueError('a distributed bank build needs part_dir')
    blocks = [
        list(range(start, min(start + block_size, len(names))))
        for start in range(0, len(names), block_size)
    ]

    def part_path(block: int) -> str:
        return osp.join(part_dir, f'part_{block:06d}.pth')

    todo = [
        b for b in range(rank, len(blocks), world_size)
        if part_dir is None or not osp.isfile(part_path(b))
    ]
    bar = ProgressBar(sum(len(blocks[b]) for b in todo)) if (
        progress and rank == 0 and todo) else None
    parts = {}
    for block in todo:
        part = _build_block(features, blocks[block], names, labels,
                                cam_store, beta1, max_vectors_per_image,
                                seed, bar)
        if part_dir is not None:
            with atomic_open(part_path(block)) as f:
                torch.save(part, f)
        parts[block] = part
    if world_size > 1:
        barrier()
    for block in range(len(blocks)):
        if block not in parts:
            parts[block] = torch.load(
                part_path(block), map_location='cpu', weights_only=True)
    meta = dict(
        meta or {},
        beta1=beta1,
        max_vectors_per_image=max_vectors_per_image,
        seed=seed,
        num_classes=labels.shape[1])
    return FeatureBank.from_parts(
        names, labels, [parts[b] for b in range(len(blocks))], meta)


def cached_feature_bank(refiner: CAMRefiner,
                        features: FeatureFn,
                        names: List[str],
                        labels: torch.Tensor,
                        cam_store: CAMStore,
                        cache_file: Optional[str] = None,
                        meta: Optional[dict] = None,
                        block_size: int = 256,
                        progress: bool = False) -> FeatureBank:
    """Build the bank, or load it from ``cache_file`` when it exists.

    A cached bank must hold the same images and have the same settings
    and ``meta`` (e.g. checkpoint and CAM folder), else ValueError. A
    new one is built resumably (blocks under ``cache_file + '.parts'``),
    by all ranks in a distributed run, and saved by rank 0.

    Args:
        refiner (CAMRefiner): Its beta1, K and seed make the bank; the bank
            is set as its bank.
        features (callable): ``features(indices)`` yields F's feature map
            of each listed bank image, (D, h, w) or (1, D, h, w), or a
            ``(feature map, image (H, W))`` pair (the CAM's size is then
            checked against the image's).
        names (list[str]): Bank image names.
        labels (Tensor): Their multi-hot labels, shape (M, C).
        cam_store (CAMStore): The stage-1 CAMs.
        cache_file (str, optional): Where the bank is kept.
        meta (dict, optional): Provenance that must match a cached bank.
        block_size (int): Images per resumable block.
        progress (bool): Show a progress bar while building.

    Returns:
        FeatureBank: The bank, also set as ``refiner.bank``.
    """
    expected = dict(meta or {}, **refiner.bank_meta())
    if cache_file is not None and osp.isfile(cache_file):
        bank = load_feature_bank(cache_file)
        wrong = {
            k: (bank.meta.get(k), v)
            for k, v in expected.items() if bank.meta.get(k) != v
        }
        if wrong or bank.names != list(names):
            raise ValueError(
                f'cached feature bank {cache_file} does not match this '
                f'run (cached, now): {wrong}'
                f'{"" if bank.names == list(names) else "; other images"}'
                '; delete it (and the refined CAMs made with it) to '
                'rebuild')
    else:
        part_dir = None if cache_file is None else cache_file + '.parts'
        bank = build_feature_bank(
            features, names, labels, cam_store, refiner.beta1,
            refiner.max_vectors_per_image, refiner.seed, meta, part_dir,
            block_size, progress)
        rank, world_size = get_dist_info()
        if cache_file is not None and rank == 0:
            save_feature_bank(bank, cache_file)
        if world_size > 1:
            barrier()
        if part_dir is not None and rank == 0:
            shutil.rmtree(part_dir, ignore_errors=True)
    refiner.set_bank(bank)
    return bank
