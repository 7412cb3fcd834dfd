# Copyright (c) mmcyc contributors. All rights reserved.
"""One on-disk format for per-image CAMs, whatever produced them.

Every CAM source (the classifier of stage 1, the CyCSNet refiner of stage 3,
future LPCAM / SEENet sources) writes one ``<name>.npz`` per image holding:

- ``cams``: float16 array (K, H, W), the normalised maps of the K classes of
  the image-level label, at the original image size;
- ``labels``: int64 array (K,), their foreground class indices (0-based, so
  VOC's "aeroplane" is 0 and mask value 1).

Files are written atomically (temporary file + ``os.replace``), so a crash
never leaves a truncated CAM and a rerun can skip every file that exists.
"""
import os.path as osp
import zipfile
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from .atomic_io import atomic_open


def cam_name(img_path: str) -> str:
    """Return the image's stem, the key of its CAM file."""
    return osp.splitext(osp.basename(img_path))[0]


def save_cam(path: str, cams: np.ndarray, labels: np.ndarray) -> None:
    """Atomically write one image's CAMs.

    Args:
        path (str): Destination ``.npz`` file.
        cams (np.ndarray): Maps of the labelled classes, shape (K, H, W).
        labels (np.ndarray): Their 0-based class indices, shape (K,).
    """
    cams = np.asarray(cams)
    labels = np.asarray(labels, dtype=np.int64)
    if cams.ndim != 3 or cams.shape[0] != labels.shape[0]:
        raise ValueError(f'cams must be (K, H, W) with K = len(labels); got '
                         f'{cams.shape} and {labels.shape} for {path}')
    with atomic_open(path) as f:
        np.savez(f, cams=cams.astype(np.float16), labels=labels)


def load_cam(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Read one image's CAMs written by :func:`save_cam`.

    Returns:
        tuple: ``cams`` float32 (K, H, W) and ``labels`` int64 (K,).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'CAM file not found: {path}')
    try:
        with np.load(path) as data:
            return data['cams'].astype(np.float32), data['labels']
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise ValueError(f'cannot read CAM file {path}: expected an .npz with '
                         f'"cams" (K, H, W) and "labels" (K,) ({err})') from err


def dense_cam(cams: np.ndarray, labels: np.ndarray,
              num_classes: int) -> torch.Tensor:
    """Scatter the K stored maps into a (num_classes, H, W) tensor of zeros."""
    dense = torch.zeros((num_classes, *cams.shape[1:]), dtype=torch.float32)
    if len(labels):
        if labels.max() >= num_classes or labels.min() < 0:
            raise ValueError(f'CAM labels {labels.tolist()} out of range for '
                             f'{num_classes} classes')
        dense[torch.as_tensor(labels)] = torch.as_tensor(cams, dtype=torch.float32)
    return dense


class CAMStore:
    """A folder of per-image CAM files (see the module docstring).

    Args:
        out_dir (str): Folder holding ``<name>.npz`` files.
    """

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def path(self, img_path: str) -> str:
        return osp.join(self.out_dir, cam_name(img_path) + '.npz')

    def exists(self, img_path: str) -> bool:
        return osp.isfile(self.path(img_path))

    def save(self, img_path: str, dense: torch.Tensor,
             labels: torch.Tensor) -> None:
        """Save the labelled channels of a dense (C, H, W) CAM."""
        keys = torch.nonzero(labels > 0.5).flatten().cpu()
        save_cam(self.path(img_path), dense[keys].cpu().numpy(), keys.numpy())

    def load(self,
             img_path: str,
             num_classes: int,
             size: Optional[Sequence[int]] = None,
             hint: str = ' (a folder made for other images, or by a CAM '
             'source that writes another scale?)') -> torch.Tensor:
        """Return the dense (num_classes, H, W) CAM of an image.

        Args:
            img_path (str): The image's path (or name).
            num_classes (int): Foreground classes C.
            size (Sequence[int], optional): The image's (H, W): a CAM of
                another size is an error naming the file and both sizes.
            hint (str): Appended to that error: what may have gone wrong.

        Returns:
            Tensor: (C, H, W) float32, zero on classes without a map.
        """
        path = self.path(img_path)
        cams, labels = load_cam(path)  # (K, H, W), (K, )
        try:
            dense = dense_cam(cams, labels, num_classes)  # (C, H, W)
        except ValueError as err:
            raise ValueError(f'CAM file {path}: {err}') from err
        if size is not None:
            size = tuple(int(v) for v in size)
            if tuple(dense.shape[1:]) != size:
                raise ValueError(
                    f'CAM file {path} has size {tuple(dense.shape[1:])} but '
                    f'image {img_path} has {size}: expected CAMs at the '
                    f'original image size{hint}')
        return dense
