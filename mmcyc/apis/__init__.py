# Copyright (c) mmcyc contributors. All rights reserved.
"""Library steps behind the tools (model loading, evaluation loops)."""
from .correspondence import (correspondence_figure, evaluate_correspondence,
                             sample_pairs)
from .cycsnet_loading import (add_cycsnet_weight_args, cycsnet_weights,
                              load_cycsnet, parsed_cycsnet_weights)

__all__ = [
    'add_cycsnet_weight_args', 'correspondence_figure', 'cycsnet_weights',
    'parsed_cycsnet_weights', 'evaluate_correspondence',
    'load_cycsnet',
    'sample_pairs'
]
from .part_recall import evaluate_part_recall, save_part_recall  # noqa: E402

__all__ += ['evaluate_part_recall', 'save_part_recall']
from .features import forward_features  # noqa: E402

__all__ += ['forward_features']
from .eq14_trace import trace_eq14  # noqa: E402

__all__ += ['trace_eq14']
from .lpcam import (fit_lpcam, gather_lpcam_sets,  # noqa: E402
                    load_stage1_checkpoint)

__all__ += ['fit_lpcam', 'gather_lpcam_sets', 'load_stage1_checkpoint']
from .refine_cams import refine_cams, score_cam_stores  # noqa: E402

__all__ += ['refine_cams', 'score_cam_stores']
from .pipeline_results import write_results  # noqa: E402
from .run_pipeline import run_pipeline  # noqa: E402

__all__ += ['run_pipeline', 'write_results']
from .feature_bank_io import (build_feature_bank,  # noqa: E402
                              cached_feature_bank, load_feature_bank,
                              save_feature_bank)

__all__ += ['build_feature_bank', 'cached_feature_bank', 'load_feature_bank',
            'save_feature_bank']
