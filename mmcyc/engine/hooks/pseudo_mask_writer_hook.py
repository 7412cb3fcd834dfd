# Copyright (c) mmcyc contributors. All rights reserved.
"""Write predicted masks as VOC palette PNGs: stage 4's pseudo-mask folder."""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch
from mmseg.registry import HOOKS
from PIL import Image

from mmcyc.datasets.cls_labels import voc_palette
from mmcyc.utils.atomic_io import atomic_open
from .per_image_writer_hook import LOOPS, PerImageWriterHook


def write_palette_png(mask: np.ndarray, path: str,
                      palette: Optional[bytes] = None) -> None:
    """Write a label map as a ``'P'``-mode PNG, atomically.

    Written through :func:`mmcyc.utils.atomic_open`, so a reader never sees
    a partial file and two processes writing the same name (the padded tail
    of a distributed sampler) leave one whole file.

    Args:
        mask (np.ndarray): ``(H, W)`` integer label map with values in
            [0, 255] (0 background, ``c + 1`` class c, 255 ignore).
        path (str): The PNG file to write; its folder is created if needed.
        palette (bytes, optional): 768 bytes of RGB colours. Defaults to the
            PASCAL VOC colour map.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f'mask must be an (H, W) integer label map, got '
                         f'shape {mask.shape} and dtype {mask.dtype}')
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f'mask values must lie in [0, 255] to fit a palette '
                         f'PNG, got [{mask.min()}, {mask.max()}]')
    if palette is None:
        palette = voc_palette().tobytes()
    png = Image.fromarray(mask.astype(np.uint8))  # 'L'; putpalette -> 'P'
    png.putpalette(palette)
    with atomic_open(path) as f:
        png.save(f, format='PNG')


@HOOKS.register_module()
class PseudoMaskWriterHook(PerImageWriterHook):
    """Saves every prediction of a val/test loop as ``<image stem>.png``.

    Stage 4 ends with ``runner.test()`` of AffinityNet, whose samples carry
    random-walk pseudo masks in ``pred_sem_seg``; this hook turns that run
    into a folder of VOC palette PNGs (values 0..20) that stage 5 reads as a
    stock mmseg ``seg_map_path``. Any segmentor's predictions work the same.

    Call order::

        before_{val,test}_epoch: reset the count
        after_{val,test}_iter:   each output sample's
                                 pred_sem_seg.data (1, H, W)
                                 -> out_dir/<img_path stem>.png
        after_{val,test}_epoch:  log how many masks this rank wrote

    Note:
        Under distributed testing each rank writes the samples of its own
        shard. Files are written atomically under unique temporary names, so
        the duplicates a padding sampler hands to two ranks are harmless.

    Args:
        out_dir (str): Folder of the PNG files (made if absent).
        pred_key (str): Data-sample field holding the mask, a ``PixelData``
            of shape (1, H, W). Defaults to 'pred_sem_seg'.
        loops (Sequence[str]): Loops that write, a subset of
            ``('val', 'test')``. Defaults to both.
    """

    what = 'masks'

    def __init__(self,
                 out_dir: str,
                 pred_key: str = 'pred_sem_seg',
                 loops: Sequence[str] = LOOPS) -> None:
        super().__init__(out_dir, loops)
        if not isinstance(pred_key, str) or not pred_key:
            raise ValueError(f'pred_key must be a data-sample field name, '
                             f'got {pred_key!r}')
        self.pred_key = pred_key
        self.palette = voc_palette().tobytes()

    def write(self, sample) -> str:
        """Write one data sample's mask; return the PNG path.

        Args:
            sample (SegDataSample): Carries ``metainfo['img_path']`` and the
                ``pred_key`` field (PixelData (1, H, W)).

        Returns:
            str: ``out_dir/<stem of img_path>.png``.
        """
        img_path = sample.metainfo.get('img_path')
        if not img_path:
            raise KeyError('PseudoMaskWriterHook: a data sample has no '
                           "metainfo['img_path'] to name its mask after")
        pred = getattr(sample, self.pred_key, None)
        if pred is None:
            raise KeyError(f'PseudoMaskWriterHook: the sample of {img_path} '
                           f'has no {self.pred_key!r}; its fields are '
                           f'{sorted(sample.keys())}')
        mask = pred.data
        if isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
        if mask.ndim != 3 or mask.shape[0] != 1:
            raise ValueError(f'PseudoMaskWriterHook: {self.pred_key} of '
                             f'{img_path} must be (1, H, W), got {mask.shape}')
        stem = osp.splitext(osp.basename(img_path))[0]
        os.makedirs(self.out_dir, exist_ok=True)
        path = osp.join(self.out_dir, stem + '.png')
        write_palette_png(mask[0], path, self.palette)  # (H, W)
        return path
