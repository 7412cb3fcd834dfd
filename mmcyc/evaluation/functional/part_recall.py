# Copyright (c) mmcyc contributors. All rights reserved.
"""How much of each kind of object region a CAM finds (SynthVOC diagnostic).

SynthVOC's part maps (:mod:`mmcyc.datasets.synthvoc`) tell, for every object
pixel, its class and whether it lies on the object's salient part, on a
weak part or on the body. The recall of a CAM on each of these region kinds
is the share of their pixels where the CAM of the pixel's own class is above
the background score -- the pixels a pseudo mask at that score can give to
the class (paper Sect. 1: a CAM finds the discriminative part and misses
the rest).
"""
from typing import Dict, Tuple

import numpy as np
import torch

from mmcyc.datasets.synthvoc import decode_part_map, salient_from_part_map

REGIONS = ('salient', 'weak', 'body')


def part_recall_counts(cam: torch.Tensor, part_map: np.ndarray,
                       bg_score: float) -> Dict[str, Tuple[int, int]]:
    """Pixels found and pixels in all, per region kind, for one image.

    Args:
        cam (Tensor): Normalised CAM, shape (C, H, W); channel ``c - 1`` is
            class id ``c``.
        part_map (np.ndarray): The image's SynthVOC part map, (H, W).
        bg_score (float): A pixel is found when its class's CAM is above it.

    Returns:
        dict[str, tuple[int, int]]: ``region -> (found, total)`` for
        ``'salient'``, ``'weak'`` and ``'body'``.
    """
    if cam.dim() != 3 or tuple(cam.shape[1:]) != tuple(part_map.shape):
        raise ValueError(f'expected cam (C, H, W) of the part map\'s size '
                         f'{tuple(part_map.shape)}, got {tuple(cam.shape)}')
    class_id, role = decode_part_map(part_map)  # (H, W) each
    if class_id.max() > cam.shape[0]:
        raise ValueError(f'part map has class id {class_id.max()} but the '
                         f'CAM has {cam.shape[0]} classes')
    index = torch.from_numpy(np.maximum(class_id - 1, 0))[None]  # (1, H, W)
    own = cam.float().cpu().gather(0, index)[0]  # (H, W)
    found = (own > bg_score).numpy() & (class_id > 0)  # (H, W)
    salient = salient_from_part_map(part_map)
    regions = dict(
        salient=salient, weak=(role > 0) & ~salient, body=role == 0)
    return {
        key: (int((found & where).sum()), int(where.sum()))
        for key, where in regions.items()
    }


def recall_percent(counts: Dict[str, Tuple[int, int]]) -> Dict[str, float]:
    """``region -> 100 * found / total`` (nan when a region has no pixel)."""
    return {
        key: 100.0 * found / total if total else float('nan')
        for key, (found, total) in counts.items()
    }
