# Copyright (c) mmcyc contributors. All rights reserved.
"""Load a CAM file as AffinityNet's low / high alpha score maps (stage 4)."""
import os.path as osp
from typing import Callable, Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from mmcyc.models.utils.affinity_labels import background_scores
from mmcyc.utils.cam_io import cam_name, load_cam


@TRANSFORMS.register_module()
class LoadAffinityScores(BaseTransform):
    """Read an image's CAM file and build the two score stacks of psa.

    For the K labelled classes of the CAM file (see
    :mod:`mmcyc.utils.cam_io`), ``(1 - max_c CAM)^alpha`` is put in front of
    the K maps once with ``alpha_low`` and once with ``alpha_high`` (psa
    ``infer_cls.py``, there followed by a dense CRF: see ``crf``). The two
    stacks go into ``results['aff_scores']`` as one (H, W, 2 (K + 1))
    float32 array registered in ``seg_fields``, so mmseg's ``RandomCrop``
    and ``RandomFlip`` move them with the image, as psa crops and flips its
    score maps jointly with the image; :class:`PackAffinityInputs` turns them
    into the label map after those transforms.

    Place it right after the image is loaded, before any resize: the CAM
    must have the image's size.

    Required keys: ``img_path``, ``img``. Added keys: ``aff_scores``,
    ``aff_score_labels`` ((K,) int64 class indices); ``seg_fields`` gets
    ``'aff_scores'``.

    Args:
        cam_dir (str): Folder of ``<image name>.npz`` CAM files.
        alpha_low (float): Defaults to 4 (psa ``--low_alpha``).
        alpha_high (float): Defaults to 32 (psa ``--high_alpha``).
        crf (callable, optional): ``crf(image, scores) -> scores`` with the
            (H, W, 3) uint8 RGB image and the (K + 1, H, W) tensor, e.g. a
            ``pydensecrf`` wrapper (psa: 10 iterations, Gaussian sxy 3 /
            compat 3, bilateral sxy 80 / srgb 13 / compat 10). Defaults to
            None: no CRF (see :mod:`mmcyc.models.utils.affinity_labels`
            for what that costs).
    """

    def __init__(self,
                 cam_dir: str,
                 alpha_low: float = 4.0,
                 alpha_high: float = 32.0,
                 crf: Optional[Callable] = None):
        if not 0 < alpha_low < alpha_high:
            raise ValueError('expected 0 < alpha_low < alpha_high, got '
                             f'{alpha_low} and {alpha_high}')
        self.cam_dir = cam_dir
        self.alpha_low = alpha_low
        self.alpha_high = alpha_high
        self.crf = crf

    def transform(self, results: dict) -> dict:
        path = osp.join(self.cam_dir, cam_name(results['img_path']) + '.npz')
        cams, labels = load_cam(path)  # (K, H, W), (K,)
        img = results['img']
        if cams.shape[1:] != img.shape[:2]:
            raise ValueError(
                f'CAM {path} has size {cams.shape[1:]} but the image '
                f'{results["img_path"]} {img.shape[:2]}: load the scores '
                'before any resize')
        cams = torch.from_numpy(cams)
        # mmcv loads BGR; a CRF expects the RGB image.
        image = torch.from_numpy(np.ascontiguousarray(img[..., ::-1])) \
            if self.crf is not None else None
        stacks = [
            background_scores(cams, alpha, self.crf, image)
            for alpha in (self.alpha_low, self.alpha_high)
        ]  # 2 x (K + 1, H, W)
        scores = torch.cat(stacks).permute(1, 2, 0)  # (H, W, 2 (K + 1))
        results['aff_scores'] = np.ascontiguousarray(scores.numpy())
        results['aff_score_labels'] = labels
        seg_fields = list(results.get('seg_fields', []))
        if 'aff_scores' not in seg_fields:
            results['seg_fields'] = seg_fields + ['aff_scores']
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(cam_dir={self.cam_dir!r}, '
                f'alpha_low={self.alpha_low}, alpha_high={self.alpha_high}, '
                f'crf={self.crf!r})')
