# Copyright (c) mmcyc contributors. All rights reserved.
"""Training curves (e.g. the beta2 of DCFS, paper Fig. 4) as images.

The curves are read back from the ``scalars.json`` that mmengine's
``LocalVisBackend`` writes during training and drawn into an RGB array, which
goes to the visualizer's backends (``Visualizer.add_image``), so the same
picture lands in a local PNG and in TensorBoard.
"""
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .local_image import figure_to_rgb


def read_scalars(scalars_json: str,
                 keys: Sequence[str]) -> Dict[str, Tuple[List, List]]:
    """Read ``(steps, values)`` of each key from a LocalVisBackend file.

    Args:
        scalars_json (str): ``<work_dir>/<timestamp>/vis_data/scalars.json``,
            one JSON object per line with a ``step`` entry.
        keys (Sequence[str]): Scalar names, e.g. ``('beta2', 'loss_cyc')``.

    Returns:
        dict: key -> (steps, values), in file order; keys never logged are
        left out.
    """
    series: Dict[str, Tuple[List, List]] = {}
    with open(scalars_json) as f:
        for line in f:
            record = json.loads(line)
            for key in keys:
                if key in record and 'step' in record:
                    steps, values = series.setdefault(key, ([], []))
                    steps.append(record['step'])
                    values.append(float(record[key]))
    return series


def draw_curves(series: Dict[str, Tuple[List, List]],
                title: str = '',
                xlabel: str = 'iteration') -> np.ndarray:
    """Draw one panel per series.

    Args:
        series (dict): name -> (steps, values).
        title (str): Figure title.
        xlabel (str): Label of the x axes.

    Returns:
        np.ndarray: RGB image, shape (H, W, 3), uint8.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not series:
        raise ValueError('no series to draw')
    fig, axes = plt.subplots(
        1, len(series), figsize=(4 * len(series), 3), squeeze=False)
    for ax, (name, (steps, values)) in zip(axes[0], series.items()):
        ax.plot(steps, values, linewidth=1.2)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return figure_to_rgb(fig)
