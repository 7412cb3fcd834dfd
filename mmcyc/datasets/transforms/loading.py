"""Image, mask and CAM loading with errors naming the file at fault.

mmcv's loaders report a missing or undecodable file as ``AssertionError: failed
to load image`` or ``AttributeError: 'NoneType' object has no attribute
'squeeze'``; these subclasses check first and say which file is wrong and what
was expected. :class:`LoadCAMFromFile` reads the CAM files of
:mod:`mmcyc.utils.cam_io` with the same kind of checks.
"""
import os.path as osp
from typing import Optional

import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from mmcyc.utils.cam_io import CAMStore

# where LoadCAMFromFile puts a map: an input CAM, or a written one read back
CAM_KEYS = ('gt_cam', 'written_cam')


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


@TRANSFORMS.register_module()
class LoadCAMFromFile(BaseTransform):
    """Load an image's stored CAMs as a dense map that follows the image.

    Reads ``<cam_dir>/<image stem>.npz`` (the format of
    :mod:`mmcyc.utils.cam_io`: the K labelled maps at the original image
    size), scatters it into all ``num_classes`` channels (zeros for the
    classes not stored) and stores it as ``results['gt_cam']``, a float32
    (H, W, num_classes) array registered in ``seg_fields``. mmseg's
    geometric transforms thus move it with the image: ``RandomCrop`` and
    ``RandomFlip`` exactly, ``Resize`` / ``RandomResize`` with *nearest*
    interpolation (mmseg resizes every seg field so): each resized value is
    a stored one, a blockier but unbiased copy of the smooth map, which the
    model then resizes bilinearly to F's resolution anyway.
    ``RandomResize`` must build mmseg's ``Resize`` (the default under
    ``default_scope = 'mmseg'``, or ``resize_type='mmseg.Resize'``): mmcv's
    ``Resize`` resizes ``gt_seg_map`` only and would leave ``gt_cam``
    behind, which :class:`PackImageLabelInputs` reports as a size mismatch.
    Transforms that only touch ``img`` (e.g. ``PhotoMetricDistortion``)
    leave it alone.
    :class:`PackImageLabelInputs` packs it as ``data_sample.gt_cam``.

    Used by ``CyCSNet(cam_source='disk')`` to read CAM_A from the CAMs of
    stage 1 instead of running the frozen classifier. Place it right after
    the image is loaded, before any resize: the CAM must have the image's
    size.

    With ``key='written_cam'`` and ``skip_missing=True`` it reads back the
    CAMs an earlier inference run wrote into its own output folder
    (``tools/test.py --cam-dir`` adds it so): the model returns those instead
    of computing them again (:class:`~mmcyc.engine.hooks.CAMWriterHook`
    writes only the others).

    Required keys: ``img_path``, ``img``. Added keys: ``key`` (``gt_cam``);
    ``seg_fields`` gets it.

    Args:
        cam_dir (str): Folder of ``<image stem>.npz`` CAM files.
        num_classes (int): Foreground classes of the dense map. Defaults to
            20 (PASCAL VOC).
        skip_missing (bool): Pass an image without a CAM file through
            unchanged instead of raising. Defaults to False.
        key (str): Results key of the map: ``'gt_cam'`` (an input, e.g.
            CAM_A or the CAM AffinityNet walks) or ``'written_cam'`` (an
            output read back). Defaults to 'gt_cam'.

    Raises:
        FileNotFoundError: If the image has no CAM file in ``cam_dir``
            (unless ``skip_missing``).
        ValueError: If the CAM file cannot be read, holds class indices of
            ``num_classes`` or more, or its size differs from the image's.
    """

    def __init__(self, cam_dir: str, num_classes: int = 20,
                 skip_missing: bool = False, key: str = 'gt_cam') -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if key not in CAM_KEYS:
            raise ValueError(f'key must be one of {CAM_KEYS}, got {key!r}')
        self.cam_dir = cam_dir
        self.num_classes = num_classes
        self.skip_missing = skip_missing
        self.key = key
        self.store = CAMStore(cam_dir)

    def transform(self, results: dict) -> dict:
        img_path = results['img_path']
        path = self.store.path(img_path)
        if self.skip_missing and not osp.isfile(path):
            return results
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'CAM file {path} of image {img_path} not found: expected '
                f'one <image stem>.npz per image in cam_dir={self.cam_dir!r} '
                '(written by tools/test.py --cam-dir with the stage-1 '
                'config)')
        if 'img' not in results:
            raise KeyError('LoadCAMFromFile needs the loaded image: put it '
                           'after LoadCheckedImageFromFile')
        cam = self.store.load(  # (C, H, W)
            img_path, self.num_classes, results['img'].shape[:2],
            hint='; put LoadCAMFromFile before any resize')
        # (C, H, W) -> (H, W, C), the layout of seg fields
        results[self.key] = np.ascontiguousarray(
            cam.numpy().transpose(1, 2, 0))
        seg_fields = results.setdefault('seg_fields', [])
        if self.key not in seg_fields:
            seg_fields.append(self.key)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(cam_dir={self.cam_dir!r}, '
                f'num_classes={self.num_classes}, '
                f'skip_missing={self.skip_missing}, key={self.key!r})')
