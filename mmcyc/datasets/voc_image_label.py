"""PASCAL VOC with image-level labels: the training data of the WSSS stages."""
import os.path as osp
from typing import List, Optional

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image

from .cls_labels import (VOC_CLASSES, labels_from_mask, load_cls_labels,
                         voc_palette)


def read_image_names(ann_file: str) -> List[str]:
    """Read image names from a VOC or AffinityNet split file.

    Accepts VOC's lines (``2007_000032``) and AffinityNet's lines
    (``/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png``):
    the name is the basename stem of the first token. Blank lines are skipped.
    A split without any name, or one that lists a name twice (it would be
    trained on and scored twice), is refused.

    Args:
        ann_file (str): The split file.

    Returns:
        list[str]: Image names in file order.

    Raises:
        FileNotFoundError: If ``ann_file`` does not exist.
        ValueError: If it lists no image, or an image twice (naming the file,
            the first repeated names and their line numbers).
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'annotation file {ann_file} does not exist: expected a split '
            'file with one image per line (VOC "2007_000032" or AffinityNet '
            '"/JPEGImages/2007_000032.jpg '
            '/SegmentationClassAug/2007_000032.png")')
    names, first_line, repeated = [], {}, []
    with open(ann_file) as f:
        for number, line in enumerate(f, 1):
            tokens = line.split()
            if not tokens:
                continue
            name = osp.splitext(osp.basename(tokens[0]))[0]
            if name in first_line:
                repeated.append(f'{name} (lines {first_line[name]} and '
                                f'{number})')
            else:
                first_line[name] = number
            names.append(name)
    if not names:
        raise ValueError(f'split file {ann_file} lists no image: expected one '
                         'image per line')
    if repeated:
        raise ValueError(f'split file {ann_file} lists {len(repeated)} images '
                         f'more than once: {", ".join(repeated[:5])}')
    return names


@DATASETS.register_module()
class VOCImageLabelDataset(BaseSegDataset):
    """PASCAL VOC 2012 (or SynthVOC) with a multi-hot label per image.

    Each data info holds, besides mmseg's ``img_path`` / ``seg_map_path``, the
    image label ``img_label``: a ``(20,)`` float32 multi-hot vector over the
    foreground classes (mask id ``c`` in 1..20 at index ``c - 1``). Labels come
    from AffinityNet's ``cls_labels.npy`` or, when ``cls_label_file`` is None,
    from the masks.

    Args:
        ann_file (str): Split file, relative to ``data_root`` unless absolute;
            VOC or AffinityNet line format (see :func:`read_image_names`).
            Defaults to 'ImageSets/Segmentation/train_aug.txt'.
        cls_label_file (str, optional): AffinityNet ``cls_labels.npy``,
            relative to ``data_root`` unless absolute. None derives labels from
            the masks. Defaults to 'cls_labels.npy'.
        require_seg_map (bool): If False, a missing mask gives
            ``seg_map_path=None`` instead of an error (labels must then come
            from ``cls_label_file``). Defaults to True.
        check_files (bool): Check at load time that every image (and required
            mask) exists. Defaults to True.
        img_suffix (str): Image suffix. Defaults to '.jpg'.
        seg_map_suffix (str): Mask suffix. Defaults to '.png'.
        data_prefix (dict): Image and mask folders. Defaults to
            ``dict(img_path='JPEGImages',
            seg_map_path='SegmentationClassAug')``.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`.
    """
    METAINFO = dict(
        classes=('background', ) + VOC_CLASSES,
        palette=voc_palette(len(VOC_CLASSES) + 1).tolist())

    def __init__(self,
                 ann_file: str = 'ImageSets/Segmentation/train_aug.txt',
                 cls_label_file: Optional[str] = 'cls_labels.npy',
                 require_seg_map: bool = True,
                 check_files: bool = True,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 data_prefix: dict = dict(
                     img_path='JPEGImages',
                     seg_map_path='SegmentationClassAug'),
                 **kwargs) -> None:
        if cls_label_file is None and not require_seg_map:
            raise ValueError(
                'cls_label_file=None derives labels from the masks, so it '
                'needs require_seg_map=True')
        self.cls_label_file = cls_label_file
        self.require_seg_map = require_seg_map
        self.check_files = check_files
        super().__init__(
            ann_file=ann_file,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            data_prefix=data_prefix,
            **kwargs)

    @property
    def num_fg_classes(self) -> int:
        """Length of ``img_label``: ``METAINFO`` classes but background."""
        return len(self.METAINFO['classes']) - 1

    def _resolve(self, path: str) -> str:
        if self.data_root is not None and not osp.isabs(path):
            return osp.join(self.data_root, path)
        return path

    def _labels_from_file(self, names: List[str]) -> List[np.ndarray]:
        path = self._resolve(self.cls_label_file)
        table = load_cls_labels(path)
        missing = [n for n in names if n not in table]
        if missing:
            raise ValueError(
                f'class label file {path} has no label for {len(missing)} of '
                f'the {len(names)} images of {self.ann_file}, e.g. '
                f'{missing[:5]}')
        labels = [table[n] for n in names]
        bad = next((n for n, lab in zip(names, labels)
                    if lab.shape != (self.num_fg_classes, )), None)
        if bad is not None:
            raise ValueError(
                f'class label file {path}: label of {bad} has shape '
                f'{table[bad].shape}, expected ({self.num_fg_classes},)')
        return labels

    def _label_from_mask(self, seg_map_path: str) -> np.ndarray:
        try:
            with Image.open(seg_map_path) as png:
                mask = np.asarray(png)
        except OSError as e:
            raise ValueError(
                f'cannot decode image {seg_map_path}: expected a PNG '
                f'label mask ({e})') from e
        return labels_from_mask(
            mask, self.num_fg_classes, self.ignore_index, source=seg_map_path)

    def _data_info(self, name: str) -> dict:
        """Paths of one image (checked if asked) and mmseg's fixed keys."""
        img_dir = self.data_prefix.get('img_path', '') or ''
        seg_dir = self.data_prefix.get('seg_map_path', None)
        img_path = osp.join(img_dir, name + self.img_suffix)
        if self.check_files and not osp.isfile(img_path):
            raise FileNotFoundError(
                f'image file {img_path} (listed in {self.ann_file}) does not '
                f'exist: expected a {self.img_suffix} image')
        seg_map_path = None
        if seg_dir is not None:
            seg_map_path = osp.join(seg_dir, name + self.seg_map_suffix)
            if not self.require_seg_map:
                if not osp.isfile(seg_map_path):
                    seg_map_path = None
            elif self.check_files and not osp.isfile(seg_map_path):
                raise FileNotFoundError(
                    f'mask file {seg_map_path} (listed in {self.ann_file}) '
                    f'does not exist: expected a {self.seg_map_suffix} label '
                    'mask, or require_seg_map=False')
        elif self.cls_label_file is None:
            raise ValueError('cls_label_file=None derives labels from the '
                             "masks, but data_prefix has no 'seg_map_path'")
        return dict(
            img_path=img_path,
            seg_map_path=seg_map_path,
            label_map=self.label_map,
            reduce_zero_label=self.reduce_zero_label,
            seg_fields=[])

    def load_data_list(self) -> List[dict]:
        """Read the split file, check the files and attach image labels.

        Returns:
            list[dict]: Per image ``img_path``, ``seg_map_path`` (None when
            optional and absent), ``img_label`` ((20,) float32),
            ``label_map``, ``reduce_zero_label`` and ``seg_fields``.
        """
        names = read_image_names(self.ann_file)
        data_list = [self._data_info(name) for name in names]
        if self.cls_label_file is not None:
            source = self._resolve(self.cls_label_file)
            labels = self._labels_from_file(names)
        else:
            source = 'the masks'
            labels = [
                self._label_from_mask(info['seg_map_path'])
                for info in data_list
            ]
        for name, info, label in zip(names, data_list, labels):
            if not label.any():
                raise ValueError(
                    f'image {name} has no foreground class in its image label '
                    f'(from {source}): every image needs at least one of the '
                    f'{self.num_fg_classes} classes')
            info['img_label'] = label.astype(np.float32)
        return data_list
