# Copyright (c) mmcyc contributors. All rights reserved.
"""Load a CAM file as AffinityNet's low / high alpha score maps (stage 4)."""
import os.path as osp
from typing import Callable, Optional, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TASK_UTILS, TRANSFORMS

from mmcyc.models.utils.affinity_labels import background_scores
from mmcyc.utils.atomic_io import atomic_open
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
        crf (dict | callable, optional): ``crf(image, scores) -> scores``
            with the (H, W, 3) uint8 RGB image and the (K + 1, H, W) tensor,
            or the config of one in ``TASK_UTILS``: ``dict(type='DenseCRF')``
            is psa's (10 iterations, Gaussian sxy 3 / compat 3, bilateral
            sxy 80 / srgb 13 / compat 10). Defaults to None: no CRF (see
            :mod:`mmcyc.models.utils.affinity_labels` for what that costs).
        crf_cache_dir (str, optional): Where the two CRF'd stacks of each
            image are kept (``<image name>.npz``, float16, written
            atomically), so the CRF runs once per image as psa's
            ``infer_cls.py`` does, not once per epoch. Defaults to None: no
            cache (the CRF runs whenever the image is loaded).
    """

    def __init__(self,
                 cam_dir: str,
                 alpha_low: float = 4.0,
                 alpha_high: float = 32.0,
                 crf: Union[dict, Callable, None] = None,
                 crf_cache_dir: Optional[str] = None):
        if not 0 < alpha_low < alpha_high:
            raise ValueError('expected 0 < alpha_low < alpha_high, got '
                             f'{alpha_low} and {alpha_high}')
        if isinstance(crf, dict):
            crf = TASK_UTILS.build(crf)
        if crf is not None and not callable(crf):
            raise TypeError(f'crf must be a config dict or a callable, got '
                            f'{type(crf).__name__}')
        self.cam_dir = cam_dir
        self.alpha_low = alpha_low
        self.alpha_high = alpha_high
        self.crf = crf
        self.crf_cache_dir = crf_cache_dir if crf is not None else None

    def _score_stacks(self, cams: torch.Tensor, img: np.ndarray,
                      name: str) -> torch.Tensor:
        """The low and high alpha stacks, (2 (K + 1), H, W), CRF'd and
        cached when configured."""
        cache = (osp.join(self.crf_cache_dir, name + '.npz')
                 if self.crf_cache_dir else None)
        if cache and osp.isfile(cache):
            with np.load(cache) as f:
                scores = f['scores']
            if scores.shape != (2 * (cams.shape[0] + 1), *cams.shape[1:]):
                raise ValueError(
                    f'CRF cache {cache} holds scores of shape {scores.shape}'
                    f', expected {(2 * (cams.shape[0] + 1), *cams.shape[1:])}'
                    ' for its CAM file: delete the stale cache')
            return torch.from_numpy(scores.astype(np.float32))
        # mmcv loads BGR; a CRF expects the RGB image.
        image = torch.from_numpy(np.ascontiguousarray(img[..., ::-1])) \
            if self.crf is not None else None
        scores = torch.cat([
            background_scores(cams, alpha, self.crf, image)
            for alpha in (self.alpha_low, self.alpha_high)
        ])  # (2 (K + 1), H, W)
        if cache:
            with atomic_open(cache) as f:
                np.savez(f, scores=scores.numpy().astype(np.float16))
        return scores

    def transform(self, results: dict) -> dict:
        path = osp.join(self.cam_dir, cam_name(results['img_path']) + '.npz')
        cams, labels = load_cam(path)  # (K, H, W), (K,)
        img = results['img']
        if cams.shape[1:] != img.shape[:2]:
            raise ValueError(
                f'CAM {path} has size {cams.shape[1:]} but the image '
                f'{results["img_path"]} {img.shape[:2]}: load the scores '
                'before any resize')
        scores = self._score_stacks(
            torch.from_numpy(cams), img, cam_name(results['img_path']))
        scores = scores.permute(1, 2, 0)  # (H, W, 2 (K + 1))
        results['aff_scores'] = np.ascontiguousarray(scores.numpy())
        results['aff_score_labels'] = labels
        seg_fields = list(results.get('seg_fields', []))
        if 'aff_scores' not in seg_fields:
            results['seg_fields'] = seg_fields + ['aff_scores']
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(cam_dir={self.cam_dir!r}, '
                f'alpha_low={self.alpha_low}, alpha_high={self.alpha_high}, '
                f'crf={self.crf!r}, crf_cache_dir={self.crf_cache_dir!r})')
