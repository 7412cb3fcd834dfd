# Copyright (c) mmcyc contributors. All rights reserved.
"""CAM recall on salient parts, weak parts and bodies of a SynthVOC split."""
import json
import math
import os.path as osp
from typing import Dict, List

from mmengine.utils import ProgressBar

from mmcyc.datasets.synthvoc import load_part_map
from mmcyc.evaluation.functional.part_recall import (REGIONS,
                                                     part_recall_counts,
                                                     recall_percent)
from mmcyc.utils import CAMStore, atomic_open


def evaluate_part_recall(data_root: str,
                         cam_dir: str,
                         names: List[str],
                         num_classes: int = 20,
                         bg_score: float = 0.2,
                         progress: bool = False) -> Dict[str, float]:
    """Recall (%) of the CAMs in ``cam_dir`` per region kind over ``names``.

    Args:
        data_root (str): SynthVOC root (with ``SynthParts/``).
        cam_dir (str): Folder of per-image CAM files (:class:`CAMStore`).
        names (list[str]): Image names.
        num_classes (int): Foreground classes of the CAMs. Defaults to 20.
        bg_score (float): Background score. Defaults to 0.2.
        progress (bool): Show a progress bar.

    Returns:
        dict[str, float]: ``'salient'``, ``'weak'``, ``'body'`` -> recall in
        percent over all pixels of that kind, and ``'<kind>_pixels'`` -> how
        many pixels were counted.

    Raises:
        FileNotFoundError: A missing CAM file or part map, naming it.
    """
    store = CAMStore(cam_dir)
    totals = {key: [0, 0] for key in REGIONS}
    bar = ProgressBar(len(names)) if progress else None
    for name in names:
        if not store.exists(name):
            raise FileNotFoundError(
                f'CAM file {store.path(name)} not found (image {name})')
        cam = store.load(name, num_classes)  # (C, H, W)
        counts = part_recall_counts(cam, load_part_map(data_root, name),
                                    bg_score)
        for key, (found, total) in counts.items():
            totals[key][0] += found
            totals[key][1] += total
        if bar is not None:
            bar.update()
    result = recall_percent({k: tuple(v) for k, v in totals.items()})
    result.update({f'{k}_pixels': v[1] for k, v in totals.items()})
    result['cam_dir'] = osp.abspath(cam_dir)
    return result


def save_part_recall(result: Dict[str, float], path: str) -> None:
    """Write :func:`evaluate_part_recall`'s result as JSON, atomically.

    A region kind without pixels has no recall (NaN): written as ``null``.

    Args:
        result (dict): The result of :func:`evaluate_part_recall`.
        path (str): The JSON file.
    """
    result = {
        k: None if isinstance(v, float) and math.isnan(v) else v
        for k, v in result.items()
    }
    with atomic_open(path, 'w') as f:
        json.dump(result, f, indent=2)
