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

The work is ``mmcyc.apis.similarity_figure``; this tool parses the
arguments.
"""
import argparse
import os.path as osp
import sys
from typing import Tuple

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmcyc.apis.similarity_figure import similarity_figure  # noqa: E402


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


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmcyc  # noqa: F401  (registers the models)
    result = similarity_figure(
        cfg, args.checkpoint, args.source, args.targets, args.out_dir,
        points=args.points, top_k=args.top_k, cam_dir=args.cam_dir,
        data_root=args.data_root)
    print(f'similarity maps of {len(result["cells"])} point(s) of '
          f'{args.source} on {len(args.targets)} target(s) (alpha '
          f'{result["alpha"]:g}, cells {result["cells"]}): {result["png"]}')


if __name__ == '__main__':
    main()
