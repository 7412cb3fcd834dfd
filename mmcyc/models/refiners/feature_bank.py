# Copyright (c) mmcyc contributors. All rights reserved.
"""The selected CyCSNet vectors of every training image, computed once.

Algorithm 2 runs F on each of the N images sampled for a target and keeps
the vectors of ``F_s`` where ``C^s_c > beta1``. Those vectors depend only on
the trained F and on the stage-1 CAM of s, not on the target, so the bank
computes them once per training image and every target reuses them: a
target then costs one forward pass (its own ``F_t``) instead of N + 1.

The bank only computes; building it from CAM files, saving and loading it
are ``mmcyc.apis.feature_bank_io``'s.
"""
import zlib
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from ..utils.cam import cam_to_grid

FeatureFn = Callable[[Sequence[int]], Iterable[torch.Tensor]]
# 2: CAMs brought to F's grid by psa's average pooling (1: bilinear)
BANK_VERSION = 2


def name_seed(seed: int, key: str) -> int:
    """A seed derived from ``(seed, key)``, stable across runs and ranks.

    Python's ``hash`` of a string changes between processes; CRC-32 does not.
    Keys name the use and the image (``'bank/<name>'``, ``'refs/<name>'``) so
    that two uses of one image draw independent streams.
    """
    return (zlib.crc32(f'{seed}/{key}'.encode()) + (seed << 32)) % (2**63)


def seeded_generator(seed: int, key: str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by :func:`name_seed`."""
    generator = torch.Generator()
    generator.manual_seed(name_seed(seed, key))
    return generator


class FeatureBank:
    """Per training image and class, F's vectors where the CAM is above beta1.

    For every bank image s and every class c of its label ``y_s``, the
    vectors ``V_(x,y)`` of ``F_s`` at the positions where ``C^s_c(x, y) >
    beta1`` (``C^s`` = the stage-1 CAM of s read from a :class:`CAMStore`,
    brought to F's grid by psa's rule, ``cam_to_grid``: zero-padded at the
    bottom / right to a multiple of the stride, then each stride x stride
    block averaged, so a position stands for the pixels it covers), at most
    K of them per (image, class): when more pass the threshold, a uniformly
    random subset of K is kept (in raster order), drawn from a generator
    seeded by ``(seed, 'bank/<name of s>')``. Vectors are stored fp16,
    sorted by (image, class), with their image index and class.

    Relation to the paper's per-target sampling (Alg. 2): the paper samples
    N training images per target (label sets intersecting ``y_t``) and uses
    all their selected vectors. :class:`CAMRefiner` samples N images per
    target too, seeded by (seed, target name), among the bank images whose
    labels intersect ``y_t``, and uses their banked vectors of the classes
    in ``y_t`` and ``y_s``. With ``max_vectors_per_image=None`` these are all
    the selected vectors, so the result is identical to recomputing the N
    images for each target (up to fp16 storage of the vectors). With a cap K
    the subset of an image is fixed across targets instead of redrawn per
    target; K bounds the bank's memory, ``2 * D * K`` bytes per (image,
    class), i.e. about 4.2 GB for VOC's 10,582 images (1.5 classes each) at
    D = 2048, K = 64.

    Args:
        names (list[str]): Bank image names (CAM keys), M of them.
        labels (Tensor): Multi-hot labels, shape (M, C), bool.
        vectors (Tensor): The selected vectors, shape (T, D), fp16.
        image_index (Tensor): Bank image of each vector, shape (T, ), int64.
        classes (Tensor): Class of each vector, shape (T, ), int64.
        meta (dict, optional): How the bank was made (beta1, K, seed,
            sources); compared when a cached bank is reused.
    """

    def __init__(self,
                 names: List[str],
                 labels: torch.Tensor,
                 vectors: torch.Tensor,
                 image_index: torch.Tensor,
                 classes: torch.Tensor,
                 meta: Optional[dict] = None):
        if labels.dim() != 2 or labels.shape[0] != len(names):
            raise ValueError(f'labels must have shape ({len(names)}, C), got '
                             f'{tuple(labels.shape)}')
        if vectors.dim() != 2 or not (image_index.shape == classes.shape ==
                                      vectors.shape[:1]):
            raise ValueError(
                f'expected vectors (T, D), image_index (T, ) and classes '
                f'(T, ); got {tuple(vectors.shape)}, '
                f'{tuple(image_index.shape)} and {tuple(classes.shape)}')
        self.names = list(names)
        self.labels = labels.bool()
        self.meta = dict(meta or {})
        self._index: Dict[str, int] = {n: i for i, n in enumerate(names)}
        if len(self._index) != len(self.names):
            raise ValueError('bank image names must be unique')
        num_images, num_classes = self.labels.shape
        image_index, classes = image_index.long(), classes.long()
        key = image_index * num_classes + classes  # (T, )
        if bool((key[1:] < key[:-1]).any()):  # built banks are sorted
            order = torch.sort(key, stable=True).indices  # (T, )
            vectors, image_index = vectors[order], image_index[order]
            classes, key = classes[order], key[order]
        self.vectors = vectors  # (T, D)
        self.image_index = image_index  # (T, )
        self.classes = classes  # (T, )
        # vectors of (image m, class c) are rows start[m, c] : + count[m, c]
        count = torch.bincount(
            key, minlength=num_images * num_classes)  # (M * C, )
        self.seg_count = count.view(num_images, num_classes)  # (M, C)
        self.seg_start = (count.cumsum(0) - count).view(
            num_images, num_classes)  # (M, C)

    # ------------------------------------------------------------ queries
    @property
    def num_images(self) -> int:
        return len(self.names)

    @property
    def num_classes(self) -> int:
        return self.labels.shape[1]

    @property
    def channels(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of the bank's tensors (vectors and indices)."""
        return sum(
            t.numel() * t.element_size()
            for t in (self.vectors, self.image_index, self.classes,
                      self.seg_count, self.seg_start))

    @property
    def device(self) -> torch.device:
        """Where the vectors are."""
        return self.vectors.device

    def index_of(self, name: str) -> Optional[int]:
        """Bank index of an image, None if it is not in the bank."""
        return self._index.get(name)

    def gather(self,
               images: torch.Tensor,
               class_mask: torch.Tensor,
               pin_memory: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """The banked vectors of some images, for some classes.

        Args:
            images (Tensor): Bank indices, shape (n, ), int.
            class_mask (Tensor): Classes to take, shape (C, ), bool.
            pin_memory (bool): For a bank on the CPU, write the vectors into
                page-locked memory, from which ``.to('cuda',
                non_blocking=True)`` copies without waiting for the host.
                Ignored when no CUDA device is available or the bank is on
                a device. Defaults to False.

        Returns:
            tuple[Tensor, Tensor]: ``vectors`` (S, D) fp16 and their
            ``classes`` (S, ) int64, on the bank's device.
        """
        images = images.long().to(self.seg_start.device)
        mask = class_mask.bool().to(self.seg_start.device)[None]  # (1, C)
        counts = (self.seg_count[images] * mask).flatten()  # (n * C, )
        starts = self.seg_start[images].flatten()  # (n * C, )
        total = int(counts.sum())
        # row r of segment k is starts[k] + r, r < counts[k]
        seg_of_row = torch.repeat_interleave(
            torch.arange(len(counts), device=counts.device), counts)  # (S, )
        first_row = counts.cumsum(0) - counts  # (n * C, )
        rows = starts[seg_of_row] + torch.arange(
            total, device=counts.device) - first_row[seg_of_row]  # (S, )
        if (pin_memory and self.vectors.device.type == 'cpu'
                and torch.cuda.is_available()):
            vectors = torch.empty((total, self.channels),
                                  dtype=self.vectors.dtype, pin_memory=True)
            torch.index_select(self.vectors, 0, rows, out=vectors)  # (S, D)
            return vectors, self.classes[rows]
        return self.vectors[rows], self.classes[rows]  # (S, D), (S, )

    def to(self, device) -> 'FeatureBank':
        """Move the vectors and indices to ``device`` (in place)."""
        for key in ('vectors', 'image_index', 'classes', 'seg_count',
                    'seg_start'):
            setattr(self, key, getattr(self, key).to(device))
        return self

    # ----------------------------------------------------------- building
    @staticmethod
    def select(feat: torch.Tensor,
               cam: torch.Tensor,
               labels: torch.Tensor,
               beta1: float,
               max_vectors: Optional[int] = None,
               generator: Optional[torch.Generator] = None
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One image's vectors where its CAM exceeds ``beta1``, per class.

        Args:
            feat (Tensor): ``F_s``, shape (D, h, w).
            cam (Tensor): ``C^s``, shape (C, H, W): at (h, w), or at an
                image size on that grid, which is brought to (h, w) by psa's
                rule (:func:`~mmcyc.models.utils.cam.cam_to_grid`: zero-pad
                the bottom / right to a multiple of the stride, average each
                stride x stride block).
            labels (Tensor): Multi-hot ``y_s``, shape (C, ).
            beta1 (float): CAM threshold.
            max_vectors (int, optional): Cap per class (random subset).
            generator (torch.Generator, optional): CPU generator of the
                subset.

        Returns:
            tuple[Tensor, Tensor]: vectors (S, D) in ``feat``'s dtype and
            classes (S, ) int64, on ``feat``'s device, class by class in
            raster order.
        """
        channels, height, width = feat.shape
        cam = cam_to_grid(cam.to(feat.device, torch.float32),
                          (height, width))  # (C, h, w)
        flat = feat.flatten(1).t()  # (P, D)
        vectors, classes = [flat.new_zeros((0, channels))], []
        for cls in torch.nonzero(labels > 0.5).flatten().tolist():
            pos = torch.nonzero(cam[cls].flatten() > beta1).flatten()  # (k, )
            if max_vectors is not None and len(pos) > max_vectors:
                pick = torch.randperm(len(pos), generator=generator)
                pos = pos[pick[:max_vectors].sort().values.to(pos.device)]
            vectors.append(flat[pos])  # (k, D)
            classes.append(torch.full((len(pos), ), cls, dtype=torch.long))
        classes = torch.cat(classes) if classes else torch.zeros(
            0, dtype=torch.long)
        return torch.cat(vectors), classes.to(feat.device)

    # ------------------------------------------------------------ records
    @classmethod
    def from_parts(cls, names: List[str], labels: torch.Tensor,
                   parts: Sequence[dict],
                   meta: Optional[dict] = None) -> 'FeatureBank':
        """A bank from per-block records (``vectors``, ``image_index``,
        ``classes``, in block order), as a build makes them."""
        return cls(names, labels,
                   torch.cat([part['vectors'] for part in parts]),
                   torch.cat([part['image_index'] for part in parts]),
                   torch.cat([part['classes'] for part in parts]), meta)

    def to_dict(self) -> dict:
        """The bank as a dict of CPU tensors and lists (its file record)."""
        return dict(
            version=BANK_VERSION,
            names=self.names,
            labels=self.labels.cpu(),
            vectors=self.vectors.cpu(),
            image_index=self.image_index.cpu(),
            classes=self.classes.cpu(),
            meta=self.meta)

    @classmethod
    def from_dict(cls, data: dict,
                  source: str = 'the record') -> 'FeatureBank':
        """The bank of a :meth:`to_dict` record.

        Raises:
            ValueError: Naming ``source`` when the record is of another
                version.
        """
        if not isinstance(data, dict) or data.get('version') != BANK_VERSION:
            raise ValueError(f'{source} is not a feature bank of version '
                             f'{BANK_VERSION}; delete it to rebuild')
        return cls(data['names'], data['labels'], data['vectors'],
                   data['image_index'], data['classes'], data['meta'])
