from .cam import (cam_to_mask, class_activation_map, mask_cam_by_label,
                  multi_scale_cam, normalize_cam)
from .cosine_kmeans import KMeansResult, cosine_kmeans
from .dense_crf import DenseCRF
from .separable_resize import bilinear_resize, linear_interpolation_matrix

__all__ = [
    'cam_to_mask', 'class_activation_map', 'mask_cam_by_label',
    'multi_scale_cam', 'normalize_cam', 'DenseCRF', 'cosine_kmeans',
    'KMeansResult', 'bilinear_resize', 'linear_interpolation_matrix'
]
