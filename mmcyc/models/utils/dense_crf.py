# Copyright (c) mmcyc contributors. All rights reserved.
"""Fully connected CRF over per-pixel class scores (psa's ``crf_inference``).

A thin wrapper around ``pydensecrf`` (installed from the maintained
``pydensecrf2`` fork by ``tools/install.sh``), with AffinityNet's parameters
as defaults, used to sharpen the low / high alpha score maps from which
stage 4 derives its affinity labels.
"""
from typing import Union

import numpy as np
import torch
from mmseg.registry import TASK_UTILS

ArrayLike = Union[np.ndarray, torch.Tensor]


@TASK_UTILS.register_module()
class DenseCRF:
    """Mean-field inference of a dense CRF, as psa ``imutils.crf_inference``.

    The unary term is ``-log(max(p, 1e-5))`` of the given scores (which need
    not sum to one: psa feeds its background-augmented CAM stack directly),
    the pairwise terms a Gaussian smoothness kernel and a bilateral
    appearance kernel over pixel position and RGB colour.

    Args:
        num_iters (int): Mean-field iterations. Defaults to 10 (psa).
        gaussian_sxy (float): Position std of the smoothness kernel.
            Defaults to 3.
        gaussian_compat (float): Its weight. Defaults to 3.
        bilateral_sxy (float): Position std of the appearance kernel.
            Defaults to 80.
        bilateral_srgb (float): Colour std of the appearance kernel.
            Defaults to 13.
        bilateral_compat (float): Its weight. Defaults to 10.
        scale_factor (float): psa's ``scale_factor``: both position stds are
            divided by it (for images downscaled by that factor).
            Defaults to 1.
    """

    def __init__(self,
                 num_iters: int = 10,
                 gaussian_sxy: float = 3.0,
                 gaussian_compat: float = 3.0,
                 bilateral_sxy: float = 80.0,
                 bilateral_srgb: float = 13.0,
                 bilateral_compat: float = 10.0,
                 scale_factor: float = 1.0) -> None:
        if num_iters < 0:
            raise ValueError(f'num_iters must be >= 0, got {num_iters}')
        if scale_factor <= 0:
            raise ValueError(f'scale_factor must be > 0, got {scale_factor}')
        try:
            import pydensecrf.densecrf  # noqa: F401
        except ImportError as e:
            raise ImportError(
                'DenseCRF needs pydensecrf: pip install pydensecrf2==1.1 '
                '(tools/install.sh installs it)') from e
        self.num_iters = num_iters
        self.gaussian_sxy = gaussian_sxy
        self.gaussian_compat = gaussian_compat
        self.bilateral_sxy = bilateral_sxy
        self.bilateral_srgb = bilateral_srgb
        self.bilateral_compat = bilateral_compat
        self.scale_factor = scale_factor

    def __call__(self, image: ArrayLike, scores: ArrayLike) -> torch.Tensor:
        """Refine ``scores`` on ``image``.

        Args:
            image (ndarray | Tensor): RGB image, (H, W, 3) uint8.
            scores (ndarray | Tensor): Per-class scores, (C, H, W), >= 0.

        Returns:
            Tensor: Marginals after mean-field inference, (C, H, W) float32,
            summing to one over C at each pixel.
        """
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax

        image = np.ascontiguousarray(
            image.cpu().numpy() if isinstance(image, torch.Tensor) else image)
        device = scores.device if isinstance(scores, torch.Tensor) else None
        scores = (scores.detach().cpu().numpy()
                  if isinstance(scores, torch.Tensor) else np.asarray(scores))
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'image must be (H, W, 3) uint8, got shape '
                             f'{image.shape} and dtype {image.dtype}')
        if scores.ndim != 3 or scores.shape[1:] != image.shape[:2]:
            raise ValueError(f'scores must be (C, H, W) with the image size '
                             f'{image.shape[:2]}, got {scores.shape}')
        num_classes, height, width = scores.shape
        crf = dcrf.DenseCRF2D(width, height, num_classes)
        crf.setUnaryEnergy(
            np.ascontiguousarray(
                unary_from_softmax(scores.astype(np.float32))))
        crf.addPairwiseGaussian(
            sxy=self.gaussian_sxy / self.scale_factor,
            compat=self.gaussian_compat)
        crf.addPairwiseBilateral(
            sxy=self.bilateral_sxy / self.scale_factor,
            srgb=self.bilateral_srgb,
            rgbim=image,
            compat=self.bilateral_compat)
        marginals = np.array(crf.inference(self.num_iters), np.float32)
        marginals = torch.from_numpy(
            marginals.reshape(num_classes, height, width))
        return marginals if device is None else marginals.to(device)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_iters={self.num_iters}, '
                f'gaussian=({self.gaussian_sxy}, {self.gaussian_compat}), '
                f'bilateral=({self.bilateral_sxy}, {self.bilateral_srgb}, '
                f'{self.bilateral_compat}), '
                f'scale_factor={self.scale_factor})')
