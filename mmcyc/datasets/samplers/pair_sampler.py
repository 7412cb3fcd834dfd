# Copyright (c) mmcyc contributors. All rights reserved.
"""Sampler of (image, partner) index pairs for :class:`PairedVOCDataset`."""
from typing import Iterator, Optional, Sized, Tuple

import numpy as np
from mmengine.dataset import DefaultSampler
from mmseg.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class PairSampler(DefaultSampler):
    """:class:`mmengine.dataset.DefaultSampler` yielding ``(index, partner)``.

    The order of the A images, the round-up and the rank sharding are
    DefaultSampler's. Each epoch, the partners of *all* images are drawn at
    once by ``dataset.sample_partners`` from a numpy generator seeded with
    ``(seed, epoch)``. So in distributed training every rank draws the same
    partners and keeps its own shard; the pairs depend on the seed and epoch
    only, not on the world size, the rank or the dataloader workers (the
    sampler runs in the main process). Call :meth:`set_epoch` (mmengine's
    train loops do) for new partners every epoch.

    Args:
        dataset (Sized): A dataset with ``sample_partners(indices, rng)``,
            e.g. :class:`PairedVOCDataset`.
        shuffle (bool): Whether to shuffle the A images. Defaults to True.
        seed (int, optional): Seed of the order and the partners, the same on
            every rank. None takes ``mmengine.dist.sync_random_seed()``; the
            Runner passes ``randomness.seed``. Defaults to None.
        round_up (bool): Pad the indices to a multiple of the world size.
            Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        if not hasattr(dataset, 'sample_partners'):
            raise TypeError(
                'PairSampler needs a dataset with sample_partners(indices, '
                f'rng) such as PairedVOCDataset, got {type(dataset).__name__}')
        super().__init__(dataset, shuffle=shuffle, seed=seed,
                         round_up=round_up)
        if self.seed < 0:
            raise ValueError(f'seed must be >= 0, got {self.seed}')

    def partners(self) -> np.ndarray:
        """The partners of every image in this epoch, (len(dataset), )."""
        rng = np.random.default_rng([self.seed, self.epoch])
        return self.dataset.sample_partners(np.arange(len(self.dataset)), rng)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        """Iterate this rank's ``(index, partner)`` tuples."""
        partners = self.partners()
        return iter([(i, int(partners[i])) for i in super().__iter__()])
