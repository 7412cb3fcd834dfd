# Copyright (c) mmcyc contributors. All rights reserved.
"""The paper's Fig. 3 as a library step: W^f of source points on target
images (``tools/analysis_tools/similarity_maps.py`` parses the arguments
and calls :func:`similarity_figure`; its docstring describes the steps and
the outputs)."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmseg.datasets.transforms import PackSegInputs

from mmcyc.datasets.image_label_split import image_label_dataset_cfg
from mmcyc.datasets.transforms import LoadCheckedImageFromFile
from mmcyc.models.utils.cam_refinement import similarity_maps
from mmcyc.utils import CAMStore, load_cam
from mmcyc.visualization import add_local_image
from mmcyc.visualization.similarity_maps import draw_similarity_maps
from .cycsnet_loading import load_cycsnet
from .features import forward_features

IMAGE_NAME = 'similarity_maps'


def resolve_image(dataset_cfg: dict,
                  name: str,
                  data_root: Optional[str] = None) -> str:
    """The file of the image ``name`` under the dataset's image folder."""
    data_root = data_root or dataset_cfg['data_root']
    prefix = (dataset_cfg.get('data_prefix') or {}).get('img_path',
                                                        'JPEGImages')
    path = osp.join(data_root, prefix,
                    name + dataset_cfg.get('img_suffix', '.jpg'))
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'no image named {name!r} under data root {data_root}: {path} '
            'does not exist (names are as in the split files, e.g. '
            '2007_000032)')
    return path


def load_image(path: str) -> dict:
    """One image as a batch for ``forward_features``, loaded and packed as
    ``tools/refine_cam.py``'s datasets do (scale 1, no augmentation)."""
    results = LoadCheckedImageFromFile()(dict(img_path=path))
    return pseudo_collate([PackSegInputs()(results)])


def point_cells(points: Sequence[Tuple[float, float]],
                image_size: Sequence[int],
                feat_size: Sequence[int]) -> List[Tuple[int, int]]:
    """The feature cell (i, j) of each (y, x) image point.

    Raises:
        ValueError: For a point outside [0, H) x [0, W).
    """
    (height, width), (h, w) = image_size, feat_size
    cells = []
    for y, x in points:
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f'point (y={y:g}, x={x:g}) is outside the source '
                             f'image of size (H={height}, W={width})')
        cells.append((min(int(y * h / height), h - 1),
                      min(int(x * w / width), w - 1)))
    return cells


def top_cam_cells(cam: torch.Tensor, feat_size: Sequence[int],
                  k: int) -> List[Tuple[int, int]]:
    """The k cells of largest CAM, maximum over its classes, at F's size.

    Args:
        cam (Tensor): The stored CAMs of the label's classes, (K_c, H, W).
        feat_size (Sequence[int]): F's (h, w).
        k (int): Cells to return, best first.
    """
    if cam.shape[0] == 0:
        raise ValueError('the source has no labelled class in its CAM file')
    cam = F.interpolate(
        cam[None].float(), size=tuple(feat_size), mode='bilinear',
        align_corners=False)[0].amax(0)  # (h, w)
    k = min(k, cam.numel())
    flat = cam.flatten().topk(k).indices  # (k, )
    return [(int(i) // feat_size[1], int(i) % feat_size[1]) for i in flat]


def cell_centre(cell: Tuple[int, int], image_size: Sequence[int],
                feat_size: Sequence[int]) -> Tuple[float, float]:
    """The (y, x) image pixel at the centre of a feature cell."""
    return tuple(
        min((c + 0.5) * size / f, size - 1)
        for c, size, f in zip(cell, image_size, feat_size))


def similarity_figure(cfg: Config,
                      checkpoint: str,
                      source: str,
                      targets: Sequence[str],
                      out_dir: str,
                      points: Optional[Sequence[Tuple[float, float]]] = None,
                      top_k: Optional[int] = None,
                      cam_dir: Optional[str] = None,
                      data_root: Optional[str] = None) -> dict:
    """Draw W^f of source points on target images (Fig. 3).

    mmseg's default scope must be set and ``mmcyc`` imported.

    Args:
        cfg (Config): A trained CyCSNet's config (its training dataset
            names the image folder; ``model.head.alpha`` is used).
        checkpoint (str): The CyCSNet checkpoint.
        source (str): Source image name (as in the split files).
        targets (Sequence[str]): Target image names.
        out_dir (str): The visualizer's save_dir; ``similarity_maps.npz``
            goes there too.
        points (Sequence[tuple], optional): Source points (y, x) in image
            pixels.
        top_k (int, optional): Instead of ``points``, the K cells of
            largest stage-1 CAM (needs ``cam_dir``).
        cam_dir (str, optional): Stage-1 CAMs, for ``top_k``.
        data_root (str, optional): Overrides the dataset's data_root.

    Returns:
        dict: ``png`` (the drawn grid's path), ``points``, ``cells``,
        ``alpha``.
    """
    if (points is None) == (top_k is None):
        raise ValueError('give either points or top_k')
    if top_k is not None and (top_k < 1 or not cam_dir):
        raise ValueError('top_k needs K >= 1 and cam_dir')
    dataset_cfg = image_label_dataset_cfg(cfg)
    paths = [
        resolve_image(dataset_cfg, name, data_root)
        for name in (source, *targets)
    ]
    alpha = float(cfg.model.get('head', {}).get('alpha', 20.0))
    device = torch.device('cuda', torch.cuda.current_device()) \
        if torch.cuda.is_available() else torch.device('cpu')
    model = load_cycsnet(cfg.model, checkpoint=checkpoint, device=device)

    feats = [forward_features(model, load_image(p))[0] for p in paths]
    images = [mmcv.imread(p, channel_order='rgb') for p in paths]
    source_feat, source_img = feats[0], images[0]
    image_size, feat_size = source_img.shape[:2], source_feat.shape[1:]
    if points is not None:
        cells = point_cells(points, image_size, feat_size)
    else:
        # the stored maps are those of the label's classes, (K_c, H, W)
        cam, _ = load_cam(CAMStore(cam_dir).path(paths[0]))
        cells = top_cam_cells(torch.from_numpy(cam), feat_size, top_k)
        points = [cell_centre(c, image_size, feat_size) for c in cells]
    index = torch.tensor([i * feat_size[1] + j for i, j in cells])
    vectors = source_feat.flatten(1)[:, index.to(device)].t()  # (P, D)

    maps, raw = [], {}
    for name, feat, img in zip(targets, feats[1:], images[1:]):
        wf = similarity_maps(vectors, feat, alpha).view(
            len(cells), *feat.shape[1:])  # (P, h_t, w_t)
        raw[f'wf_{name}'] = wf.cpu().numpy()
        maps.append(
            F.interpolate(
                wf[None], size=img.shape[:2], mode='bilinear',
                align_corners=False)[0].cpu().numpy())  # (P, H_t, W_t)
    grid = draw_similarity_maps(
        source_img, points, images[1:], maps, titles=[source, *targets])

    os.makedirs(out_dir, exist_ok=True)
    np.savez(
        osp.join(out_dir, 'similarity_maps.npz'),
        points=np.asarray(points, dtype=np.float32),
        cells=np.asarray(cells, dtype=np.int64),
        targets=np.asarray(list(targets)), alpha=alpha, **raw)
    png = add_local_image(out_dir, IMAGE_NAME, grid, 'mmcyc_similarity_maps')
    return dict(png=png, points=list(points), cells=cells, alpha=alpha)
