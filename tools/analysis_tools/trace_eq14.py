# Copyright (c) mmcyc contributors. All rights reserved.
"""Where Eq. 14 gains or loses: W^f statistics of F on pairs of train images.

    # the trained CyCSNet
    python tools/analysis_tools/trace_eq14.py CONFIG CHECKPOINT --cam-dir CAMS \\
        [--split ImageSets/Segmentation/train.txt] [--pairs-per-image 4] \\
        [--out JSON] [--cfg-options ...]
    # F before stage 2 (the classifier's backbone)
    python tools/analysis_tools/trace_eq14.py CONFIG - \\
        --init-from-classifier CAM_CKPT --cam-dir CAMS ...

Pairs as in ``tools/analysis_tools/correspondence.py`` (``sample_pairs``,
``--seed``); ground truth from ``<data_root>/SegmentationClassAug``. Prints
and writes the statistics of ``mmcyc.apis.trace_eq14``: the quantiles of
each reference's largest W^f, the share above Bg / epsilon, the share whose
peak lies within one cell of its own position, and the share of the cells
above Bg / epsilon on the class's object.
"""
import argparse
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmcyc.apis import (add_cycsnet_weight_args,  # noqa: E402
                        load_cycsnet, parsed_cycsnet_weights, sample_pairs,
                        trace_eq14)
from mmcyc.datasets.image_label_split import config_split  # noqa: E402
from mmcyc.utils import CAMStore, atomic_open, cam_name  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(
        description='W^f statistics of F behind Eq. 14')
    add_cycsnet_weight_args(
        parser, 'trace F initialised from this stage-1 classifier checkpoint '
        "(give CHECKPOINT as '-')")
    parser.add_argument('--split', default='ImageSets/Segmentation/train.txt')
    parser.add_argument('--pairs-per-image', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the statistics as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    args.weights = parsed_cycsnet_weights(parser, args)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmcyc  # noqa: F401  (registries)
    model = load_cycsnet(cfg.model, **args.weights)
    dataset, data_root = config_split(cfg, args.split)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    names = [cam_name(info['img_path']) for info in infos]
    labels = torch.stack([torch.as_tensor(i['img_label']) for i in infos])
    pairs = sample_pairs(names, labels, args.pairs_per_image, args.seed)
    head = cfg.model.get('head', {})
    refiner = cfg.get('refiner') or {}
    result = trace_eq14(
        model, dataset, pairs, CAMStore(args.cam_dir),
        osp.join(data_root, 'SegmentationClassAug'),
        alpha=float(head.get('alpha', 20.0)),
        beta1=float(refiner.get('beta1', 0.3)),
        epsilon=float(refiner.get('epsilon', 2.0)),
        bg_score=float(refiner.get('bg_score', 0.2)))
    result.update(
        features='cls' if args.init_from_classifier else 'cyc',
        pairs=len(pairs))
    print('\n' + json.dumps(result, indent=2))
    if args.out:
        with atomic_open(args.out, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
