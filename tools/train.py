# Copyright (c) mmcyc contributors. All rights reserved.
"""Train any mmcyc / mmseg config (mmseg's ``tools/train.py`` conventions)."""
import argparse
import logging
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmcyc.engine import (register_trusted_checkpoint_loader,
                          setup_cpu_distributed, teardown_distributed)
from mmcyc.fileio import repair_resume_point
from mmcyc.utils.child_process import stop_with_launcher


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (GPU)')
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

    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit(
                '--amp needs a GPU: mmengine\'s AmpOptimWrapper supports '
                'cuda/npu/mlu/musa only; train in fp32 on CPU')
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    cfg.resume = args.resume
    if args.resume and int(os.environ.get('RANK', 0)) == 0:
        # a checkpoint cut short by a kill is not resumed from
        resumed = repair_resume_point(cfg.work_dir)
        print_log(f'resuming from {resumed}' if resumed else
                  f'no whole checkpoint in {cfg.work_dir}: training afresh',
                  logger='current')
    setup_cpu_distributed(cfg, args.launcher)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
    teardown_distributed()
