# Copyright (c) mmcyc contributors. All rights reserved.
"""Save a drawn figure through mmengine's Visualizer (local backend)."""
import os.path as osp

import numpy as np
from mmengine.visualization import Visualizer


def add_local_image(save_dir: str, name: str, image: np.ndarray,
                    visualizer_name: str) -> str:
    """``Visualizer.add_image`` with a ``LocalVisBackend`` in ``save_dir``.

    Args:
        save_dir (str): The visualizer's ``save_dir``.
        name (str): Image name.
        image (np.ndarray): RGB image, shape (H, W, 3), uint8.
        visualizer_name (str): Name of the (new) visualizer instance.

    Returns:
        str: The PNG's path, ``save_dir/vis_data/vis_image/<name>_0.png``.
    """
    visualizer = Visualizer(
        name=visualizer_name,
        save_dir=save_dir,
        vis_backends=[dict(type='LocalVisBackend')])
    visualizer.add_image(name, image)
    return osp.join(save_dir, 'vis_data', 'vis_image', f'{name}_0.png')


def figure_to_rgb(fig) -> np.ndarray:
    """Render a matplotlib figure and close it.

    Returns:
        np.ndarray: RGB image, shape (H, W, 3), uint8.
    """
    import matplotlib.pyplot as plt
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
    plt.close(fig)
    return image
