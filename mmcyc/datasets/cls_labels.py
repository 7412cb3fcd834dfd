"""Image-level class labels of PASCAL VOC: reading, writing and deriving them.

Image-level labels are multi-hot ``float32`` vectors over the 20 foreground
classes of PASCAL VOC (``background`` excluded), class id ``c`` of a mask
(1..20) at index ``c - 1``. On disk they use AffinityNet's format
(``jiwoon-ahn/psa``, ``voc12/cls_labels.npy``): a dict ``image name -> (20,)
float32`` saved with :func:`numpy.save`, i.e. pickled into a 0-d object array.

These are pure functions on numpy arrays and files; they do not import mmseg.
"""
import os.path as osp
from typing import Dict, Optional

import numpy as np

from mmcyc.utils.atomic_io import atomic_open

#: The 20 foreground classes of PASCAL VOC, in label-id order (id 1 .. 20).
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')


def voc_palette(num_colors: int = 256) -> np.ndarray:
    """Return the PASCAL VOC colour map (the ``VOCdevkit`` ``labelcolormap``).

    Colour ``i`` spreads the bits of ``i`` over the high bits of R, G and B, so
    that entry 255 (the ignore label) is ``(224, 224, 192)`` as in VOC's PNG
    files.

    Args:
        num_colors (int): Number of entries. Defaults to 256.

    Returns:
        np.ndarray: ``(num_colors, 3)`` uint8 RGB colours.
    """
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for i in range(num_colors):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def load_cls_labels(path: str) -> Dict[str, np.ndarray]:
    """Load AffinityNet's ``cls_labels.npy``.

    Args:
        path (str): The ``.npy`` file: a pickled dict name -> multi-hot.

    Returns:
        dict[str, np.ndarray]: Image name to ``(num_classes,)`` float32
        multi-hot label.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a pickled dict of equally long 1-D
            label vectors.
    """
    expected = ('a dict image name -> multi-hot label '
                '(AffinityNet cls_labels.npy)')
    if not osp.isfile(path):
        raise FileNotFoundError(f'class label file {path} does not exist: '
                                f'expected a .npy file holding {expected}')
    try:
        raw = np.load(path, allow_pickle=True)
        table = raw.item() if raw.dtype == object and raw.ndim == 0 else raw
    except Exception as e:  # noqa: BLE001 -- numpy raises many kinds
        raise ValueError(f'cannot read class label file {path}: {e}') from e
    if not isinstance(table, dict):
        raise ValueError(f'class label file {path} holds a '
                         f'{type(table).__name__}, expected {expected}')
    labels = {}
    length = None
    for name, value in table.items():
        label = np.asarray(value, dtype=np.float32)
        if label.ndim != 1 or label.shape[0] != (length or label.shape[0]):
            raise ValueError(
                f'class label file {path}: label of {name!r} has shape '
                f'{label.shape}, expected ({length or "C"},) like the others')
        length = label.shape[0]
        labels[str(name)] = label
    return labels


def save_cls_labels(path: str, labels: Dict[str, np.ndarray]) -> None:
    """Save labels in AffinityNet's ``cls_labels.npy`` format.

    The file is written under a temporary name and renamed, so a reader never
    sees a half-written file. Unlike :func:`numpy.save`, ``path`` is used as
    given (no ``.npy`` is appended).

    Args:
        path (str): Output file.
        labels (dict[str, np.ndarray]): Image name to multi-hot label,
            stored as float32.
    """
    table = {str(k): np.asarray(v, np.float32) for k, v in labels.items()}
    with atomic_open(path) as f:
        np.save(f, table, allow_pickle=True)


def labels_from_mask(mask: np.ndarray,
                     num_classes: int = 20,
                     ignore_index: int = 255,
                     source: Optional[str] = None) -> np.ndarray:
    """Derive the image-level label from a semantic mask.

    Background (0) and ``ignore_index`` pixels are skipped; id ``c`` in
    1..num_classes sets index ``c - 1``.

    Args:
        mask (np.ndarray): ``(H, W)`` integer label map.
        num_classes (int): Number of foreground classes. Defaults to 20.
        ignore_index (int): Label of ignored pixels. Defaults to 255.
        source (str, optional): Where the mask came from (a file name), for
            error messages. Defaults to None.

    Returns:
        np.ndarray: ``(num_classes,)`` float32 multi-hot label, all zero when
        the mask has no foreground.

    Raises:
        ValueError: If the mask holds ids other than 0..num_classes and
            ignore_index.
    """
    values = np.unique(np.asarray(mask))
    values = values[values != ignore_index]
    bad = values[(values < 0) | (values > num_classes)]
    if bad.size:
        where = f'mask {source}' if source else 'mask'
        raise ValueError(
            f'{where} has label ids {bad.tolist()}: expected 0 (background), '
            f'1..{num_classes} (classes) or {ignore_index} (ignore)')
    label = np.zeros(num_classes, dtype=np.float32)
    fg = values[values > 0].astype(np.int64)
    label[fg - 1] = 1.0
    return label
