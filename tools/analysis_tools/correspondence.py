# Copyright (c) mmcyc contributors. All rights reserved.
"""Part-correspondence accuracy of F on SynthVOC (the paper's central claim).

    # F = the trained CyCSNet ("cyc" features)
    python tools/analysis_tools/correspondence.py CONFIG CHECKPOINT \\
        --cam-dir STAGE1_CAMS [--split ImageSets/Segmentation/train.txt] \\
        [--pairs-per-image 4] [--seed 0] [--beta1 0.3] [--out JSON] \\
        [--draw N --vis-dir DIR] [--cfg-options ...]
    # F = its initialisation, the stage-1 classifier's backbone ("cls")
    python tools/analysis_tools/correspondence.py CONFIG - \\
        --init-from-classifier CAM_CKPT --cam-dir STAGE1_CAMS ...

CONFIG is the CyCSNet config (e.g. ``configs/cyc_resnet38_synthvoc.py``).
The images and labels are those of the config's training dataset
(``train_dataloader.dataset``, unwrapped to the image-label dataset) with
the ``--split`` file, relative to its ``data_root``, which must be a SynthVOC
made with part maps (``SynthParts/``). Pairs (s, t) of images sharing a
class are drawn by ``mmcyc.apis.sample_pairs`` (``--pairs-per-image``
targets per source, ``--seed``): the same arguments give the same pairs for
both feature sets. For each reference on part k of class c in s (a stride-8
cell with part fraction >= 0.5 and pooled stage-1 CAM_c > ``--beta1``) the
peak of its W^f in t hits when it touches part k of class c in t, counted
where that part is visible in t (``mmcyc.apis.evaluate_correspondence``).

``--out`` writes (atomically) ``{"corr_acc": percent, "hits", "count",
"pairs", "features": "cls" | "cyc", ...}`` with per-class details, where
the peaks land when they miss (own cell, background) and
``corr_acc_object`` / ``corr_chance_object``: the accuracy with each peak
kept in t's object of the reference's class, what a random cell of that
object would score, and ``corr_other_part_object``: the share whose peak
kept in the object touches another part of the class instead (the other
misses land on its body only); ``corr_class_object`` /
``corr_chance_class_object``: does F still tell the classes apart (each
peak kept in t's objects, the share on an object of the reference's class,
over the ``count_class_object`` references whose t holds another class
too) and what a random object cell of t would score;
``--draw N`` draws the paper's Fig. 3 for N on-part points of the first
pairs, through mmengine's Visualizer with a LocalVisBackend:
``VIS_DIR/vis_data/vis_image/correspondence_0.png`` (the path is printed).
"""
import argparse
import json
import math
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmcyc.datasets.image_label_split import config_split  # noqa: E402
from mmcyc.apis import (add_cycsnet_weight_args,  # noqa: E402
                        correspondence_figure, evaluate_correspondence,
                        load_cycsnet, parsed_cycsnet_weights, sample_pairs)
from mmcyc.utils import CAMStore, atomic_open, cam_name  # noqa: E402
from mmcyc.visualization import add_local_image  # noqa: E402

IMAGE_NAME = 'correspondence'


def parse_args():
    parser = argparse.ArgumentParser(
        description='Part-correspondence accuracy of F (SynthVOC part maps)')
    add_cycsnet_weight_args(
        parser, 'evaluate F initialised from this stage-1 classifier checkpoint '
        "(give CHECKPOINT as '-')")
    parser.add_argument('--split', default='ImageSets/Segmentation/train.txt',
                        help='images to pair, relative to data_root')
    parser.add_argument('--pairs-per-image', type=int, default=4,
                        help='targets per source image')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the pair sampling')
    parser.add_argument('--beta1', type=float, default=0.3,
                        help='CAM threshold of the reference cells')
    parser.add_argument('--out', help='write the result JSON here')
    parser.add_argument('--draw', type=int, metavar='N',
                        help='draw Fig. 3 for N on-part source points')
    parser.add_argument('--vis-dir', default='work_dirs/correspondence',
                        help='the visualizer save_dir of --draw')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value')
    args = parser.parse_args()
    args.weights = parsed_cycsnet_weights(parser, args)
    if args.pairs_per_image < 1:
        parser.error('--pairs-per-image must be >= 1')
    if args.draw is not None and args.draw < 1:
        parser.error('--draw needs N >= 1')
    return args


def nan_to_none(value):
    """JSON has no NaN: accuracies without references become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    return value


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmcyc  # noqa: F401  (registers datasets, transforms, models)
    logger = MMLogger.get_instance('mmcyc_correspondence')
    device = torch.device('cuda', torch.cuda.current_device()) \
        if torch.cuda.is_available() else torch.device('cpu')
    features = 'cls' if args.init_from_classifier else 'cyc'
    model = load_cycsnet(cfg.model, device=device, **args.weights)
    dataset, data_root = config_split(cfg, args.split)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    names = [cam_name(info['img_path']) for info in infos]
    labels = torch.stack([torch.as_tensor(i['img_label']) for i in infos])
    pairs = sample_pairs(names, labels, args.pairs_per_image, args.seed)
    cam_store = CAMStore(args.cam_dir)
    weights = args.init_from_classifier or args.checkpoint
    logger.info(f'"{features}" features ({weights}); {len(names)} images of '
                f'{args.split}, {len(pairs)} pairs (seed {args.seed})')

    start = time.time()
    result = evaluate_correspondence(
        model, dataset, pairs, cam_store, data_root, beta1=args.beta1,
        device=device, logger='mmcyc_correspondence')
    logger.info(f'"{features}" correspondence accuracy '
                f'{result["acc"]:.2f} % ({time.time() - start:.1f} s)')
    if args.out:
        out = dict(
            corr_acc=result['acc'],
            hits=result['hits'],
            count=result['count'],
            pairs=result['pairs'],
            features=features,
            pairs_counted=result['pairs_counted'],
            images=result['images'],
            **{key: result[key] for key in (
                'peak_same_cell', 'peak_background', 'peak_same_cell_cosine',
                'peak_background_cosine')},
            corr_acc_object=result['acc_object'],
            corr_chance_object=result['chance_object'],
            corr_other_part_object=result['other_part_object'],
            corr_class_object=result['class_object'],
            corr_chance_class_object=result['chance_class_object'],
            count_class_object=result['count_class_object'],
            beta1=args.beta1,
            pairs_per_image=args.pairs_per_image,
            seed=args.seed,
            split=args.split,
            checkpoint=weights,
            per_class=result['per_class'])
        with atomic_open(args.out, 'w') as f:
            json.dump(nan_to_none(out), f, indent=2)
            f.write('\n')
        logger.info(f'wrote {args.out}')

    if args.draw and not result['count']:
        logger.warning('no reference on a part visible in its target: '
                       'nothing to draw')
    elif args.draw:
        alpha = float(cfg.model.get('head', {}).get('alpha', 20.0))
        grid, info = correspondence_figure(
            model, dataset, pairs, cam_store, data_root, args.draw,
            alpha=alpha, beta1=args.beta1, device=device)
        png = add_local_image(args.vis_dir, IMAGE_NAME, grid,
                              'mmcyc_correspondence')
        print(f'Fig. 3 of {len(info["cells"])} point(s) of {info["source"]} '
              f'(classes {info["classes"]}, parts {info["parts"]}) on '
              f'{info["targets"]}: {png}')


if __name__ == '__main__':
    main()
