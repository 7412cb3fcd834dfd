# Copyright (c) mmcyc contributors. All rights reserved.
"""The paper's Fig. 3: W^f of source points on target images.

    python tools/analysis_tools/similarity_maps.py CONFIG CHECKPOINT \\
        --source NAME (--points Y,X [Y,X ...] | --top-k K --cam-dir CAMS) \\
        --targets NAME [NAME ...] [--data-root ROOT] [--out-dir OUT] \\
        [--cfg-options ...]

CONFIG and CHECKPOINT are a trained CyCSNet's, as for
``tools/refine_cam.py`` (whose model building and feature extraction this
reuses: image at scale 1, normalised by the config's data preprocessor).
Images are named as in the split files (``2007_000032``) and read from
``<data_root>/<data_prefix.img_path>/<name><img_suffix>`` of the config's
training dataset (``--data-root`` overrides its root).

1. F's feature map of the source; its vectors at the source points: each
   ``--points`` entry (y, x in image pixels) falls in the feature cell
   ``(floor(y h / H), floor(x w / W))`` (stride 8 for ResNet-38), or, with
   ``--top-k``, the K cells where the source's stage-1 CAM (from
   ``--cam-dir``, downsampled to (h, w) as the feature bank does) is largest
   over the classes of its label.
2. For every target, ``W^f`` of each vector on the target's F (Eq. 3-4,
   ``similarity_maps`` with alpha of the config's ``model.head``), upsampled
   bilinearly to the target's size.
3. ``mmcyc.visualization.draw_similarity_maps`` draws the grid (one row per
   point), which goes to ``Visualizer.add_image('similarity_maps', ...)``
   with a ``LocalVisBackend`` in OUT: ``OUT/vis_data/vis_image/
   similarity_maps_0.png`` (the path is printed). The maps at the feature
   resolution are saved beside it in ``OUT/similarity_maps.npz``: ``points``
   (P, 2) (y, x) in source pixels, ``cells`` (P, 2) their feature cells,
   ``targets`` (T,) names and ``wf_<name>`` (P, h_t, w_t) per target.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.datasets.transforms import PackSegInputs

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(TOOLS))

from mmcyc.apis import forward_features, load_cycsnet  # noqa: E402
from mmcyc.datasets.image_label_split import \
    image_label_dataset_cfg  # noqa: E402

from mmcyc.datasets.transforms import LoadCheckedImageFromFile  # noqa: E402
from mmcyc.models.utils.cam_refinement import similarity_maps  # noqa: E402
from mmcyc.utils import CAMStore, load_cam  # noqa: E402
from mmcyc.visualization import add_local_image  # noqa: E402
from mmcyc.visualization.similarity_maps import (  # noqa: E402
    draw_similarity_maps)

IMAGE_NAME = 'similarity_maps'


def parse_point(text: str) -> Tuple[float, float]:
    try:
        y, x = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'a point is "Y,X" in image pixels, got {text!r}') from None
    return y, x


def parse_args():
    parser = argparse.ArgumentParser(
        description='Draw W^f of source points on target images (Fig. 3)')
    parser.add_argument('config', help='CyCSNet config file')
    parser.add_argument('checkpoint', help='trained CyCSNet checkpoint')
    parser.add_argument('--source', required=True, help='source image name')
    parser.add_argument(
        '--points', nargs='+', type=parse_point, metavar='Y,X',
        help='source points in image pixels (row, column)')
    parser.add_argument(
        '--top-k', type=int,
        help='use the K cells of largest stage-1 CAM instead of --points')
    parser.add_argument('--cam-dir',
                        help='stage-1 CAMs (<name>.npz), for --top-k')
    parser.add_argument('--targets', nargs='+', required=True,
                        help='target image names')
    parser.add_argument('--data-root',
                        help="overrides the config's dataset data_root")
    parser.add_argument('--out-dir', default='work_dirs/similarity_maps',
                        help='the visualizer save_dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value')
    args = parser.parse_args()
    if (args.points is None) == (args.top_k is None):
        parser.error('give either --points or --top-k')
    if args.top_k is not None and (args.top_k < 1 or not args.cam_dir):
        parser.error('--top-k needs K >= 1 and --cam-dir')
    return args


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


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmcyc  # noqa: F401  (registers the models)
    dataset_cfg = image_label_dataset_cfg(cfg)
    paths = [
        resolve_image(dataset_cfg, name, args.data_root)
        for name in (args.source, *args.targets)
    ]
    alpha = float(cfg.model.get('head', {}).get('alpha', 20.0))
    device = torch.device('cuda', torch.cuda.current_device()) \
        if torch.cuda.is_available() else torch.device('cpu')
    model = load_cycsnet(cfg.model, checkpoint=args.checkpoint, device=device)

    feats = [forward_features(model, load_image(p))[0] for p in paths]
    images = [mmcv.imread(p, channel_order='rgb') for p in paths]
    source_feat, source_img = feats[0], images[0]
    image_size, feat_size = source_img.shape[:2], source_feat.shape[1:]
    if args.points is not None:
        points = args.points
        cells = point_cells(points, image_size, feat_size)
    else:
        # the stored maps are those of the label's classes, (K_c, H, W)
        cam, _ = load_cam(CAMStore(args.cam_dir).path(paths[0]))
        cells = top_cam_cells(torch.from_numpy(cam), feat_size, args.top_k)
        points = [cell_centre(c, image_size, feat_size) for c in cells]
    index = torch.tensor([i * feat_size[1] + j for i, j in cells])
    vectors = source_feat.flatten(1)[:, index.to(device)].t()  # (P, D)

    maps, raw = [], {}
    for name, feat, img in zip(args.targets, feats[1:], images[1:]):
        wf = similarity_maps(vectors, feat, alpha).view(
            len(cells), *feat.shape[1:])  # (P, h_t, w_t)
        raw[f'wf_{name}'] = wf.cpu().numpy()
        maps.append(
            F.interpolate(
                wf[None], size=img.shape[:2], mode='bilinear',
                align_corners=False)[0].cpu().numpy())  # (P, H_t, W_t)
    grid = draw_similarity_maps(
        source_img, points, images[1:], maps,
        titles=[args.source, *args.targets])

    os.makedirs(args.out_dir, exist_ok=True)
    np.savez(
        osp.join(args.out_dir, 'similarity_maps.npz'),
        points=np.asarray(points, dtype=np.float32),
        cells=np.asarray(cells, dtype=np.int64),
        targets=np.asarray(args.targets), alpha=alpha, **raw)
    png = add_local_image(args.out_dir, IMAGE_NAME, grid,
                          'mmcyc_similarity_maps')
    print(f'similarity maps of {len(cells)} point(s) of {args.source} on '
          f'{len(args.targets)} target(s) (alpha {alpha:g}, cells '
          f'{cells}): {png}')


if __name__ == '__main__':
    main()
