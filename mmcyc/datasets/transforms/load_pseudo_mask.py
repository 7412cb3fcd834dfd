# Copyright (c) mmcyc contributors. All rights reserved.
"""Read back a pseudo mask an earlier run wrote, so a walk resumes."""
import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image

from mmcyc.utils.cam_io import cam_name


@TRANSFORMS.register_module()
class LoadPseudoMask(BaseTransform):
    """Load ``<mask_dir>/<image stem>.png`` when an earlier run wrote it.

    The random walk of stage 4 writes one palette PNG per image
    (:class:`~mmcyc.engine.hooks.PseudoMaskWriterHook`); with this transform
    in the test pipeline, an image whose mask is there is not walked again:
    ``results['written_sem_seg']`` ((H, W) int64 at the original image size)
    is packed by :class:`PackImageLabelInputs` as
    ``data_sample.written_sem_seg`` and ``AffinityNet.predict`` returns it
    as the prediction, so an interrupted walk resumes and is still scored
    on every image. Images without a PNG pass through unchanged, and so
    does everything when ``mask_dir`` is None (``tools/test.py
    --pseudo-mask-dir`` sets it).

    Required keys: ``img_path``, ``ori_shape`` (or ``img``). Added keys:
    ``written_sem_seg`` (only for images whose mask exists).

    Args:
        mask_dir (str, optional): Folder of the written masks. Defaults to
            None (nothing is read).
        num_classes (int): Foreground classes; labels above it are refused.
            Defaults to 20.

    Raises:
        ValueError: Naming the PNG if it cannot be decoded, has another
            size than the image, or a label above ``num_classes``.
    """

    def __init__(self, mask_dir: Optional[str] = None,
                 num_classes: int = 20) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f'num_classes must be an int >= 1, got {num_classes!r}')
        self.mask_dir = mask_dir
        self.num_classes = num_classes

    def transform(self, results: dict) -> dict:
        if self.mask_dir is None:
            return results
        path = osp.join(self.mask_dir, cam_name(results['img_path']) + '.png')
        if not osp.isfile(path):
            return results
        try:
            with Image.open(path) as png:
                mask = np.array(png)
        except Exception as e:  # noqa: BLE001 -- decoders raise many kinds
            raise ValueError(f'cannot decode pseudo mask {path}: expected a '
                             f'PNG label mask ({type(e).__name__}: {e}); '
                             'delete it to walk the image again') from e
        shape = results.get('ori_shape') or results['img'].shape[:2]
        if mask.shape != tuple(shape[:2]):
            raise ValueError(
                f'pseudo mask {path} has size {mask.shape}, expected the '
                f'image size {tuple(shape[:2])}: a stale mask of another '
                'image? delete it to walk the image again')
        if mask.max(initial=0) > self.num_classes:
            raise ValueError(
                f'pseudo mask {path} has label {int(mask.max())}: expected '
                f'0..{self.num_classes}')
        results['written_sem_seg'] = mask.astype(np.int64)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mask_dir={self.mask_dir!r}, '
                f'num_classes={self.num_classes})')
