# Copyright (c) mmcyc contributors. All rights reserved.
"""Several training curves in one panel (e.g. beta2 per DCFS setting, Fig. 4).

``draw_curves`` (``training_curves.py``) draws one panel per scalar; this
draws several runs of the same scalar over each other, with a legend, into
an RGB array for ``Visualizer.add_image``.
"""
from typing import Dict, List, Tuple

import numpy as np

from .local_image import figure_to_rgb


def draw_overlaid_curves(series: Dict[str, Tuple[List, List]],
                         title: str = '',
                         xlabel: str = 'iteration',
                         ylabel: str = '') -> np.ndarray:
    """Draw every series in one panel, labelled in a legend.

    Args:
        series (dict): label -> (steps, values), e.g. a setting name ->
            the beta2 that ``read_scalars`` read from its run; drawn in
            dict order.
        title (str): Panel title.
        xlabel (str): Label of the x axis.
        ylabel (str): Label of the y axis.

    Returns:
        np.ndarray: RGB image, shape (H, W, 3), uint8.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not series:
        raise ValueError('no series to draw')
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (steps, values) in series.items():
        if len(steps) != len(values):
            raise ValueError(f'series {label!r} has {len(steps)} steps but '
                             f'{len(values)} values')
        ax.plot(steps, values, linewidth=1.2, label=label)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
    fig.tight_layout()
    return figure_to_rgb(fig)
