"""Packing of images with their image-level label."""
from typing import Sequence

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS

# mmseg's PackSegInputs default: ``img_label`` is packed as data, not meta.
DEFAULT_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                     'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                     'reduce_zero_label')


@TRANSFORMS.register_module()
class PackImageLabelInputs(PackSegInputs):
    """:class:`mmseg.datasets.transforms.PackSegInputs` plus the image label.

    The multi-hot image-level label ``results[label_key]`` becomes
    ``data_sample.gt_img_label``, a float32 tensor of shape ``(num_classes,)``.
    It enters the meta information only if ``label_key`` is listed in
    ``meta_keys``. A stored CAM ``results['gt_cam']`` (H, W, C) from
    :class:`LoadCAMFromFile`, if present, becomes ``data_sample.gt_cam``, a
    :class:`PixelData` of float32 data (C, H, W). ``SegDataPreProcessor``
    pads ``gt_sem_seg`` only, so in a padded batch ``gt_cam`` keeps each
    image's own size (``CyCSNet`` pads it). Its size must be the image's.

    A pseudo mask read back by :class:`LoadPseudoMask`,
    ``results['written_sem_seg']`` (H, W), becomes
    ``data_sample.written_sem_seg`` (PixelData (1, H, W), int64).

    Required keys: ``label_key`` (and what :class:`PackSegInputs` packs).
    A CAM read back by ``LoadCAMFromFile(key='written_cam')`` becomes
    ``data_sample.written_cam`` the same way.

    Optional keys: ``gt_cam``, ``written_cam``, ``written_sem_seg``.
    Added keys: ``inputs`` ((C, H, W) tensor), ``data_samples``
    (SegDataSample).

    Args:
        meta_keys (Sequence[str]): Keys packed into the meta information.
            Defaults to mmseg's PackSegInputs default.
        label_key (str): Key of the image label in the results. Defaults to
            'img_label'.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = DEFAULT_META_KEYS,
                 label_key: str = 'img_label') -> None:
        super().__init__(meta_keys=meta_keys)
        self.label_key = label_key

    def transform(self, results: dict) -> dict:
        if self.label_key not in results:
            raise KeyError(
                f'PackImageLabelInputs: results of {results.get("img_path")} '
                f'have no {self.label_key!r}; expected the multi-hot image '
                'label that VOCImageLabelDataset puts in each data info')
        label = np.asarray(results[self.label_key], dtype=np.float32)
        if label.ndim != 1:
            raise ValueError(
                f'{self.label_key} of {results.get("img_path")} has shape '
                f'{label.shape}, expected (num_classes,)')
        packed = super().transform(results)
        packed['data_samples'].gt_img_label = torch.from_numpy(label.copy())
        for key in ('gt_cam', 'written_cam'):
            if key not in results:
                continue
            cam = np.asarray(results[key], dtype=np.float32)
            img_size = results['img'].shape[:2]
            if cam.ndim != 3 or cam.shape[:2] != img_size:
                raise ValueError(
                    f'{key} of {results.get("img_path")} has shape '
                    f'{cam.shape}, expected (H, W, num_classes) with the '
                    f'image size {img_size}: a transform moved the image '
                    'but not the seg fields (e.g. mmcv\'s Resize; use '
                    "mmseg's, RandomResize(resize_type='mmseg.Resize'))")
            cam = np.ascontiguousarray(cam.transpose(2, 0, 1))  # (C, H, W)
            packed['data_samples'].set_field(
                PixelData(data=torch.from_numpy(cam)), key)
        if 'written_sem_seg' in results:  # LoadPseudoMask: read back
            packed['data_samples'].written_sem_seg = PixelData(
                data=torch.from_numpy(results['written_sem_seg'])[None])
        return packed

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(meta_keys={self.meta_keys}, '
                f'label_key={self.label_key!r})')
