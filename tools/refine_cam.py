# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 3: refine stage-1 CAMs with a trained CyCSNet (Eq. 14, Alg. 2).

    python tools/refine_cam.py CONFIG CHECKPOINT --cam-dir STAGE1_CAMS \\
        --out-dir OUT [--split ImageSets/Segmentation/train.txt] \\
        [--bank-split ImageSets/Segmentation/train_aug.txt] [--num-refs N] \\
        [--metrics-json M] [--cfg-options ...] [--launcher pytorch]

CONFIG is a CyCSNet config (e.g. ``configs/cyc_resnet38_voc.py``) holding a
``refiner=dict(type='CAMRefiner', ...)`` entry, CHECKPOINT its trained
weights (they include the frozen classifier's, so the classifier checkpoint
named in the config is not read). ``CHECKPOINT`` ``-`` with
``--init-from-classifier CAM_CKPT`` refines with F = the stage-1
classifier's backbone, i.e. F before stage 2 (Eq. 14 without CyCSNet
training, an ablation). The images and labels come from the
config's training dataset (``train_dataloader.dataset``, unwrapped to the
image-label dataset), with the split files given here, relative to its
``data_root``.

1. F's features of every image of ``--bank-split`` (image at scale 1,
   normalised by the config's data preprocessor) and their stage-1 CAMs from
   ``--cam-dir`` make the feature bank, cached as ``OUT/feature_bank.pth``
   (resumable; in a distributed run every rank builds a share of it).
2. Every target of ``--split`` is refined (rank r of W takes targets r,
   r + W, ...) and written to ``OUT/<name>.npz`` in the CAM format of
   ``mmcyc.utils.cam_io``; targets whose file exists are skipped, so a rerun
   resumes. The refined CAMs are the ``--cam-dir`` of the next stage. Values
   may exceed 1 (``epsilon W^f`` <= epsilon).
3. With ``--metrics-json``, the refined and the stage-1 CAMs of the targets
   are scored as pseudo masks (background score ``refiner.bg_score``, 0.2)
   with mmseg's IoUMetric: ``{"mIoU": ..., "mIoU_unrefined": ...}``.

The work is ``mmcyc.apis.refine_cams``; this tool parses the arguments,
starts the distributed run and writes the metrics.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.dist import init_dist, is_main_process
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmcyc.apis import (add_cycsnet_weight_args,  # noqa: E402
                        parsed_cycsnet_weights, refine_cams)
from mmcyc.engine import (setup_cpu_distributed,  # noqa: E402
                          teardown_distributed)
from mmcyc.utils import atomic_open  # noqa: E402
from mmcyc.utils.child_process import stop_with_launcher  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(
        description='Refine stage-1 CAMs with a trained CyCSNet (stage 3)')
    add_cycsnet_weight_args(
        parser, "with CHECKPOINT '-': F = the stage-1 classifier's backbone "
        '(F before stage 2): Eq. 14 without CyCSNet training, an ablation')
    parser.add_argument('--out-dir', required=True,
                        help='refined CAMs and the feature bank go here')
    parser.add_argument(
        '--split', default='ImageSets/Segmentation/train.txt',
        help='targets to refine, relative to data_root')
    parser.add_argument(
        '--bank-split', default='ImageSets/Segmentation/train_aug.txt',
        help='images the references are sampled from (the training set), '
        'relative to data_root; each needs its stage-1 CAM in --cam-dir')
    parser.add_argument('--num-refs', type=int,
                        help='N, overrides refiner.num_refs of the config')
    parser.add_argument('--bank-file',
                        help='feature bank cache (default '
                        'OUT/feature_bank.pth)')
    parser.add_argument('--metrics-json',
                        help='score refined and stage-1 CAMs, write here')
    parser.add_argument('--workers', type=int, default=2,
                        help='image loading processes')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='empty OUT first when it holds refined CAMs made by other '
        'weights, settings, stage-1 CAMs or data (without it that is an '
        'error: they would be read back as if made now)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    args.weights = parsed_cycsnet_weights(parser, args)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    # a torchrun worker stops when its launcher is killed (even by SIGKILL)
    stop_with_launcher()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmcyc  # noqa: F401  (registers datasets, transforms, models)
    if args.launcher != 'none' and not setup_cpu_distributed(
            cfg, args.launcher):
        init_dist(args.launcher)
    results = refine_cams(
        cfg, args.weights, args.cam_dir, args.out_dir, split=args.split,
        bank_split=args.bank_split, num_refs=args.num_refs,
        bank_file=args.bank_file, score=bool(args.metrics_json),
        workers=args.workers, overwrite=args.overwrite)
    if args.metrics_json and is_main_process():
        keys = ('mIoU', 'mIoU_unrefined', 'num_targets', 'num_refs',
                'bg_score')
        with atomic_open(args.metrics_json, 'w') as f:
            json.dump({k: results[k] for k in keys}, f, indent=2)


if __name__ == '__main__':
    main()
    teardown_distributed()
