# Copyright (c) mmcyc contributors. All rights reserved.
"""Fit LPCAM's prototypes from a stage-1 classifier and its CAMs.

    python tools/fit_lpcam.py configs/lpcam_resnet38_voc.py CLS_CKPT \\
        --cam-dir STAGE1_CAMS [--split ImageSets/Segmentation/train.txt] \\
        --out LPCAM.pth [--device cuda] [--cfg-options ...]

Then LPCAM's maps are CAMs like any other:

    python tools/test.py configs/lpcam_resnet38_voc.py LPCAM.pth \\
        --cam-dir LPCAM_CAMS --split ImageSets/Segmentation/train_aug.txt

``--split`` defaults to ``train.txt``, the images the public code clusters
(its ``save_feature`` reads ``voc12/train.txt`` at scale 1 without flips;
the scale is ``model.fit_cfg.scale``). ``--cam-dir`` must hold the stage-1
CAMs of those images (``tools/test.py configs/cam_*.py CLS_CKPT --cam-dir``).
The library step is ``mmcyc.apis.fit_lpcam``.
"""
import argparse

from mmengine.config import DictAction
from mmengine.logging import MMLogger

from mmcyc.apis import fit_lpcam


def parse_args():
    parser = argparse.ArgumentParser(
        description="Fit LPCAM's prototypes (class and context clusters)")
    parser.add_argument('config', help='LPCAM config file')
    parser.add_argument('checkpoint', help='stage-1 classifier checkpoint')
    parser.add_argument('--cam-dir', required=True,
                        help='stage-1 CAMs of the split (one <name>.npz each)')
    parser.add_argument(
        '--split', default='ImageSets/Segmentation/train.txt',
        help='images to cluster, relative to the test data_root (the '
        'public code: train.txt)')
    parser.add_argument('--out', required=True,
                        help='the LPCAM checkpoint to write')
    parser.add_argument('--device', help='default: cuda when available')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value')
    return parser.parse_args()


def main():
    args = parse_args()
    MMLogger.get_instance('mmcyc', log_level='INFO')
    fit_lpcam(args.config, args.checkpoint, args.cam_dir, args.split,
              args.out, cfg_options=args.cfg_options, device=args.device)


if __name__ == '__main__':
    main()
