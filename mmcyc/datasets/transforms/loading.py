"""Image and mask loading that fails with messages naming the file at fault.

mmcv's loaders report a missing or undecodable file as ``AssertionError: failed
to load image`` or ``AttributeError: 'NoneType' object has no attribute
'squeeze'``; these subclasses check first and say which file is wrong and what
was expected.
"""
from typing import Optional

import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadCheckedImageFromFile(LoadImageFromFile):
    """:class:`mmcv.transforms.LoadImageFromFile` with clear errors.

    Required keys: ``img_path``. Added keys: ``img``, ``img_shape``,
    ``ori_shape``. Takes the same arguments as
    :class:`mmcv.transforms.LoadImageFromFile`.

    Raises:
        FileNotFoundError: If the image file does not exist (unless
            ``ignore_empty``).
        ValueError: If the file cannot be decoded as an image.
    """

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        if not fileio.exists(filename, backend_args=self.backend_args):
            if self.ignore_empty:
                return None
            raise FileNotFoundError(f'image file {filename} does not exist: '
                                    'expected a JPEG/PNG image')
        try:
            return super().transform(results)
        except Exception as e:  # noqa: BLE001 -- decoders raise many kinds
            raise ValueError(
                f'cannot decode image {filename}: expected a JPEG/PNG '
                f'file ({type(e).__name__}: {e})') from e


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """:class:`mmseg.datasets.transforms.LoadAnnotations` with clear errors.

    Besides checking that the mask exists and decodes, it checks the label ids:
    every pixel must be below ``num_classes`` or equal to ``ignore_index``
    (after mmseg's ``label_map`` / ``reduce_zero_label``).

    Required keys: ``seg_map_path``, ``reduce_zero_label``, ``seg_fields``.
    Added keys: ``gt_seg_map``.

    Args:
        num_classes (int): Number of classes including background; PASCAL VOC
            has 21. Defaults to 21.
        ignore_index (int): Label of ignored pixels. Defaults to 255.
        **kwargs: Passed to :class:`mmseg.datasets.transforms.LoadAnnotations`.

    Raises:
        FileNotFoundError: If the mask file does not exist.
        ValueError: If there is no mask path, the mask cannot be decoded, or it
            holds label ids other than 0..num_classes-1 and ignore_index.
    """

    def __init__(self,
                 num_classes: int = 21,
                 ignore_index: int = 255,
                 **kwargs) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        filename = results.get('seg_map_path')
        if filename is None:
            raise ValueError(
                f"image {results.get('img_path')} has no mask (seg_map_path "
                'is None): expected a label mask for LoadCheckedAnnotations')
        if not fileio.exists(filename, backend_args=self.backend_args):
            raise FileNotFoundError(f'mask file {filename} does not exist: '
                                    'expected a PNG label mask')
        try:
            super()._load_seg_map(results)
        except AssertionError:
            raise  # mmseg's reduce_zero_label check, with a clear message
        except Exception as e:  # noqa: BLE001 -- decoders raise many kinds
            raise ValueError(
                f'cannot decode image {filename}: expected a PNG label '
                f'mask ({type(e).__name__}: {e})') from e
        values = np.unique(results['gt_seg_map'])
        bad = values[(values >= self.num_classes)
                     & (values != self.ignore_index)]
        if bad.size:
            raise ValueError(
                f'mask {filename} has label ids {bad.tolist()}: expected '
                f'0..{self.num_classes - 1} or {self.ignore_index} (ignore)')

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
