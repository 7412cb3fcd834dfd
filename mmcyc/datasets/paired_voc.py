# Copyright (c) mmcyc contributors. All rights reserved.
"""Image pairs with intersecting labels: the training data of CyCSNet."""
import copy
import logging
import os.path as osp
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from mmseg.registry import DATASETS


@DATASETS.register_module()
class PairedVOCDataset:
    """Pairs (A, B) of images whose image-level labels intersect (Alg. 1).

    Wraps an image-level dataset (e.g. :class:`VOCImageLabelDataset`) whose
    pipeline ends with ``PackImageLabelInputs``; the pipeline is applied to A
    and B independently. Item ``i`` has image ``i`` as A. Its partner B is
    drawn from a per-class index: a class uniformly among A's classes that
    another image also has, then an image of that class other than A, so
    sampling is O(1) per image with no pairwise search.

    Where partners come from:

    * Training uses :class:`PairSampler`, which yields ``(index, partner)``
      tuples: the partners of all images are drawn at once from a generator
      seeded with ``(seed, epoch)`` in the main process, so they are
      reproducible under mmengine's ``randomness=dict(seed=...)``, change
      every epoch, are the same whatever the world size, rank or
      ``num_workers``, and never depend on worker process state.
    * A plain ``int`` index draws its partner from a generator seeded with
      ``(seed, index)`` (this class's ``seed`` argument): the same partner
      every call and every epoch.

    Images with no possible partner (none of their classes occurs in another
    image) are dropped at init with a warning naming them; a ``ValueError`` is
    raised if no image remains. Dataset indices count the kept images only.

    ``__getitem__`` returns ``dict(a=packed_A, b=packed_B)``, each the output
    of the wrapped pipeline (``inputs``: (3, H, W) tensor, ``data_samples``:
    SegDataSample with ``gt_img_label``), and both data samples also get
    ``gt_shared_label``: a float32 (num_classes,) multi-hot tensor,
    ``label_A AND label_B``. :func:`pair_collate` turns a list of such items
    into ``dict(inputs=[a_1..a_N, b_1..b_N], data_samples=[A_1..A_N,
    B_1..B_N])``: the first half of the batch is A, the second half B.

    Example config::

        train_dataloader = dict(
            batch_size=8,
            sampler=dict(type='PairSampler', shuffle=True),
            collate_fn=dict(type='pair_collate'),
            dataset=dict(
                type='PairedVOCDataset',
                dataset=dict(
                    type='VOCImageLabelDataset',
                    data_root='data/VOCdevkit/VOC2012',
                    ann_file='ImageSets/Segmentation/train_aug.txt',
                    require_seg_map=False,
                    pipeline=train_pipeline)))

    Args:
        dataset (dict | BaseDataset): The image-level dataset or its config.
            Each data info must hold ``label_key``.
        seed (int): Seed of the partners of plain ``int`` indices (unused with
            :class:`PairSampler`). Defaults to 0.
        label_key (str): Key of the multi-hot image label in the data infos.
            Defaults to 'img_label'.
        lazy_init (bool): Defer building the class index until
            :meth:`full_init`. Defaults to False.
    """

    def __init__(self,
                 dataset: Union[dict, object],
                 seed: int = 0,
                 label_key: str = 'img_label',
                 lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not all(hasattr(dataset, a) for a in ('get_data_info',
                                                  'prepare_data', 'metainfo')):
            raise TypeError(
                'PairedVOCDataset wraps an mmengine BaseDataset (e.g. '
                f'VOCImageLabelDataset) or its config, got {type(dataset)}')
        if seed < 0:
            raise ValueError(f'seed must be >= 0, got {seed}')
        self.dataset = dataset
        self.seed = seed
        self.label_key = label_key
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information."""
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Build the per-class index and drop images without a partner."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        num = len(self.dataset)
        if num == 0:
            raise ValueError('PairedVOCDataset: the wrapped dataset is empty')
        labels = np.stack([
            np.asarray(self.dataset.get_data_info(i)[self.label_key]) > 0
            for i in range(num)
        ])  # (M, C) bool
        pairable = labels & (labels.sum(0) >= 2)  # (M, C)
        keep = pairable.any(1)  # (M, )
        if not keep.all():
            dropped = [
                osp.basename(self.dataset.get_data_info(i)['img_path'])
                for i in np.flatnonzero(~keep)
            ]
            print_log(
                f'PairedVOCDataset: {len(dropped)} of {num} images have no '
                'partner (none of their classes occurs in another image) and '
                f'are skipped: {dropped[:10]}',
                logger='current',
                level=logging.WARNING)
        if not keep.any():
            raise ValueError(
                f'PairedVOCDataset: none of the {num} images shares a class '
                'with another image; expected image-level labels where each '
                'class occurs in at least two images')
        self._indices = np.flatnonzero(keep)  # (N, ) indices into dataset
        self._labels = labels[keep]  # (N, C)
        # per class, the dataset indices of its images: C arrays
        self._class_index = [np.flatnonzero(col) for col in self._labels.T]
        self._counts = np.array([len(m) for m in self._class_index])  # (C, )
        self._offsets = np.concatenate([[0], np.cumsum(self._counts)[:-1]])
        self._members = np.concatenate(self._class_index)  # (sum counts, )
        # position of image i within class c's index, (N, C)
        self._pos = np.zeros(self._labels.shape, dtype=np.int64)
        for c, members in enumerate(self._class_index):
            self._pos[members, c] = np.arange(len(members))
        pair = self._labels & (self._counts >= 2)  # (N, C)
        self._num_pairable = pair.sum(1)  # (N, )
        # pairable classes first, ascending: row i, columns < num_pairable[i]
        self._pairable_classes = np.argsort(~pair, axis=1, kind='stable')
        self._fully_initialized = True

    @property
    def class_index(self) -> List[np.ndarray]:
        """Per class, the sorted dataset indices of the images having it."""
        self.full_init()
        return self._class_index

    @property
    def labels(self) -> np.ndarray:
        """Image labels of the kept images, (N, num_classes) bool."""
        self.full_init()
        return self._labels

    @property
    def kept_indices(self) -> np.ndarray:
        """Indices into the wrapped dataset of the kept images, (N, )."""
        self.full_init()
        return self._indices

    def __len__(self) -> int:
        self.full_init()
        return len(self._indices)

    def get_data_info(self, idx: int) -> dict:
        """The wrapped dataset's data info of image ``idx`` (as A)."""
        self.full_init()
        return self.dataset.get_data_info(int(self._indices[idx]))

    def sample_partners(self, indices: Sequence[int],
                        rng: np.random.Generator) -> np.ndarray:
        """Draw one partner for each image, vectorised.

        Args:
            indices (Sequence[int]): Dataset indices of the A images, (K, ).
            rng (np.random.Generator): Source of randomness.

        Returns:
            np.ndarray: Partner indices, (K, ) int64; partner ``k`` shares a
            class with ``indices[k]`` and differs from it.
        """
        self.full_init()
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)  # (K, )
        k = rng.integers(self._num_pairable[indices])  # (K, )
        cls = self._pairable_classes[indices, k]  # (K, )
        j = rng.integers(self._counts[cls] - 1)  # (K, ), skipping A itself
        j = j + (j >= self._pos[indices, cls])
        return self._members[self._offsets[cls] + j]

    def partner_index(self, index: int) -> int:
        """The partner of a plain ``int`` index: seeded by (seed, index)."""
        rng = np.random.default_rng([self.seed, int(index)])
        return int(self.sample_partners([index], rng)[0])

    def _prepare(self, index: int) -> dict:
        inner = int(self._indices[index])
        packed = self.dataset.prepare_data(inner)
        if packed is None:
            raise ValueError(
                'PairedVOCDataset: the pipeline returned None for '
                f'{self.dataset.get_data_info(inner)["img_path"]}')
        if not isinstance(packed, dict) or 'data_samples' not in packed:
            raise TypeError(
                'PairedVOCDataset: expected the wrapped pipeline to end with '
                'PackImageLabelInputs (a dict with inputs and data_samples), '
                f'got {type(packed)}')
        return packed

    def __getitem__(self, idx: Union[int, Tuple[int, int]]) -> Dict[str, dict]:
        """Load pair ``idx``: an ``(index, partner)`` tuple or an ``int``.

        Returns:
            dict: ``dict(a=packed_A, b=packed_B)``; both data samples carry
            ``gt_shared_label`` (float32 (num_classes,)).
        """
        self.full_init()
        if isinstance(idx, (tuple, list)):
            index, partner = (int(i) for i in idx)
        else:
            index = int(idx)
            partner = self.partner_index(index)
        shared = self._labels[index] & self._labels[partner]  # (C, )
        if not shared.any() or index == partner:
            raise ValueError(
                f'PairedVOCDataset: images {index} and {partner} are not a '
                'pair of distinct images sharing a class')
        shared = torch.from_numpy(shared.astype(np.float32))
        pair = dict(a=self._prepare(index), b=self._prepare(partner))
        for packed in pair.values():
            packed['data_samples'].gt_shared_label = shared.clone()
        return pair

    def __repr__(self) -> str:
        size = len(self) if self._fully_initialized else 'not initialised'
        return (f'{self.__class__.__name__}(dataset='
                f'{type(self.dataset).__name__}, size={size}, '
                f'seed={self.seed})')
