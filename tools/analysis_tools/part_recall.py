# Copyright (c) mmcyc contributors. All rights reserved.
"""CAM recall on SynthVOC's salient parts, weak parts and bodies.

    python tools/analysis_tools/part_recall.py DATA_ROOT CAM_DIR \\
        [--split ImageSets/Segmentation/train.txt] [--bg-score 0.2] \\
        [--out recall.json]

Prints the share of each region kind's pixels where the CAM of the pixel's
class is above the background score (``mmcyc.apis.evaluate_part_recall``).
"""
import argparse
import os.path as osp

from mmcyc.apis.part_recall import evaluate_part_recall, save_part_recall
from mmcyc.datasets import read_image_names


def parse_args():
    parser = argparse.ArgumentParser(
        description='CAM recall per SynthVOC region kind')
    parser.add_argument('data_root', help='SynthVOC root')
    parser.add_argument('cam_dir', help='folder of per-image CAM files')
    parser.add_argument(
        '--split', default='ImageSets/Segmentation/train.txt',
        help='split file under DATA_ROOT')
    parser.add_argument('--bg-score', type=float, default=0.2)
    parser.add_argument('--num-classes', type=int, default=20)
    parser.add_argument('--out', help='write the result as JSON here')
    return parser.parse_args()


def main():
    args = parse_args()
    names = read_image_names(osp.join(args.data_root, args.split))
    result = evaluate_part_recall(args.data_root, args.cam_dir, names,
                                  args.num_classes, args.bg_score,
                                  progress=True)
    print(f"\nrecall at bg {args.bg_score}: salient {result['salient']:.1f} "
          f"%, weak {result['weak']:.1f} %, body {result['body']:.1f} %")
    if args.out:
        save_part_recall(result, args.out)


if __name__ == '__main__':
    main()
