# Copyright (c) mmcyc contributors. All rights reserved.
"""Test (e.g. infer and score CAMs) with a config and a checkpoint.

The work is ``mmcyc.apis.checkpoint_test``; this tool parses the arguments,
starts the distributed run and writes the metrics.
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import get_rank

from mmcyc.apis.checkpoint_test import (add_test_outputs,
                                        add_test_time_augmentation,
                                        run_checkpoint_test)
from mmcyc.engine import (register_trusted_checkpoint_loader,
                          setup_cpu_distributed, teardown_distributed)
from mmcyc.utils import atomic_open
from mmcyc.utils.child_process import stop_with_launcher


def parse_args():
    parser = argparse.ArgumentParser(description='Test a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--cam-dir',
        help='write one CAM file per image there (CAMWriterHook; '
        'resumable: images whose CAM exists are read back by a '
        'LoadCAMFromFile added to the test pipeline)')
    parser.add_argument(
        '--split',
        help='ann file of the test dataset relative to data_root, e.g. '
        'ImageSets/Segmentation/train.txt')
    parser.add_argument(
        '--pseudo-mask-dir',
        help='write every prediction as a VOC palette PNG there '
        '(PseudoMaskWriterHook), e.g. the random-walk pseudo masks; with a '
        'LoadPseudoMask in the test pipeline (AffinityNet\'s configs), '
        'images whose PNG exists are read back (resumable)')
    parser.add_argument(
        '--input-cam-dir',
        help='the CAM folder the test pipeline reads (sets cam_dir of its '
        'LoadCAMFromFile, e.g. the CAMs AffinityNet walks)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation as mmseg\'s --tta: the config\'s '
        'tta_pipeline (each image at several scales, flipped and not) and '
        'tta_model (their softmax averaged); for segmentation models')
    parser.add_argument(
        '--metrics-json', help='also write the metrics to this JSON file')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='empty --cam-dir / --pseudo-mask-dir first when they hold files '
        'made by another checkpoint, config or data (without it that is an '
        'error: the files would be read back as if made now)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    register_trusted_checkpoint_loader()
    # a torchrun worker stops when its launcher is killed (even by SIGKILL)
    stop_with_launcher()

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    try:
        if args.tta:
            if args.cam_dir or args.input_cam_dir:
                raise ValueError('--tta tests segmentation models: it does '
                                 'not go with --cam-dir or --input-cam-dir')
            add_test_time_augmentation(cfg)
        add_test_outputs(cfg, cam_dir=args.cam_dir, split=args.split,
                         input_cam_dir=args.input_cam_dir,
                         pseudo_mask_dir=args.pseudo_mask_dir)
    except ValueError as err:  # e.g. --input-cam-dir without a reader,
        # --tta without a tta_pipeline
        raise SystemExit(str(err))
    setup_cpu_distributed(cfg, args.launcher)
    metrics = run_checkpoint_test(
        cfg, args.checkpoint, cam_dir=args.cam_dir,
        pseudo_mask_dir=args.pseudo_mask_dir, overwrite=args.overwrite)
    if args.metrics_json and get_rank() == 0:
        with atomic_open(args.metrics_json, 'w') as f:
            json.dump({k: float(v) if not isinstance(v, str) else v
                       for k, v in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
    teardown_distributed()
