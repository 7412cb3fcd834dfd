"""Write SynthVOC, a small synthetic dataset in PASCAL VOC 2012 layout.

    python tools/dataset_converters/make_synthvoc.py data/synthvoc
    python tools/dataset_converters/make_synthvoc.py OUT \
        --num-train 240 --num-val 60 --size 96 --seed 0 \
        [--variant multi-part|single-part]

See ``mmcyc/datasets/synthvoc.py`` for what the images hold and the layout.
"""
import argparse
import time

from mmcyc.datasets.synthvoc import (VARIANTS, is_complete, make_synthvoc,
                                     synthvoc_summary)


def parse_args():
    parser = argparse.ArgumentParser(description='Generate SynthVOC')
    parser.add_argument('out', help='output directory (VOC layout inside)')
    parser.add_argument(
        '--num-train', type=int, default=240,
        help='images in train_aug.txt (default: 240)')
    parser.add_argument(
        '--num-val', type=int, default=60,
        help='images in val.txt (default: 60)')
    parser.add_argument(
        '--num-train-aug-extra', type=int, default=None,
        help='train_aug images not in train.txt (default: '
        'num_train - num_train // 3, so train.txt is a third of train_aug)')
    parser.add_argument(
        '--size', type=int, nargs='+', default=[96],
        help='image size: S (square) or H W (default: 96)')
    parser.add_argument('--seed', type=int, default=0, help='default: 0')
    parser.add_argument(
        '--variant', choices=VARIANTS, default='multi-part',
        help='multi-part (default): two parts per class, one salient per '
        'object; single-part: the control, one always-salient part')
    parser.add_argument(
        '--skip-existing', action='store_true',
        help='do nothing if OUT holds a complete SynthVOC made with the '
        'same arguments')
    return parser.parse_args()


def main():
    args = parse_args()
    kwargs = dict(
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size[0] if len(args.size) == 1 else args.size,
        seed=args.seed,
        num_train_aug_extra=args.num_train_aug_extra,
        variant=args.variant)
    if args.skip_existing and is_complete(args.out, **kwargs):
        print(f'SynthVOC in {args.out} is complete for these arguments; '
              'skipped')
        return
    start = time.perf_counter()
    result = make_synthvoc(args.out, **kwargs)
    print(synthvoc_summary(result))
    print(f'  written in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
