from .cam import (cam_to_mask, class_activation_map, mask_cam_by_label,
                  multi_scale_cam, normalize_cam)
from .dense_crf import DenseCRF
from .mxnet_params import load_mxnet_params, save_mxnet_params
from .psa_keys import (check_state_dict_keys, convert_checkpoint,
                       convert_psa_state_dict, load_checkpoint_strict,
                       shape_mismatches)

__all__ = [
    'cam_to_mask', 'class_activation_map', 'mask_cam_by_label',
    'multi_scale_cam', 'normalize_cam', 'DenseCRF', 'load_mxnet_params',
    'save_mxnet_params', 'check_state_dict_keys', 'convert_checkpoint',
    'convert_psa_state_dict', 'load_checkpoint_strict', 'shape_mismatches'
]
