# Copyright (c) mmcyc contributors. All rights reserved.
"""Metrics as pure tensor functions (no registry, no file I/O)."""
from .correspondence import (cells_to_grid, class_cells,
                             class_separation_hits, correspondence_hits,
                             correspondence_summary, counted_references,
                             object_correspondence_hits, part_cells,
                             peak_cells, reference_mask)
from .peak_shortcuts import peak_shortcut_counts

__all__ = [
    'cells_to_grid', 'class_cells', 'class_separation_hits',
    'correspondence_hits',
    'correspondence_summary', 'counted_references',
    'object_correspondence_hits', 'part_cells', 'peak_cells',
    'peak_shortcut_counts', 'reference_mask'
]
from .part_recall import (REGIONS, part_recall_counts,  # noqa: E402
                          recall_percent)

__all__ += ['REGIONS', 'part_recall_counts', 'recall_percent']
