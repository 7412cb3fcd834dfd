# Copyright (c) mmcyc contributors. All rights reserved.
"""Convert AffinityNet (jiwoon-ahn/psa) ResNet-38 weights to mmcyc keys.

Sources: psa's ImageNet ResNet-38 state dict, ``res38_cls.pth``,
``res38_aff.pth`` (bare state dicts or ``{'state_dict': ...}``, DataParallel
``module.`` prefixes allowed) and the MXNet original
``ilsvrc-cls_rna-a1_cls1000_ep-0001.params`` (read without MXNet).

Example::

    python tools/model_converters/psa2mmcyc.py \\
        ilsvrc-cls_rna-a1_cls1000_ep-0001.params \\
        pretrain/resnet38_imagenet_mmcyc.pth

The result loads with ``init_cfg=dict(type='Pretrained', checkpoint=DST,
prefix='backbone.')`` on ``ResNet38`` or ``load_from=DST`` on a whole model.
"""
import argparse
import sys

from mmcyc.converters.psa_keys import LAYOUTS, convert_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert psa / MXNet ResNet-38 checkpoints to mmcyc')
    parser.add_argument('src', help='psa .pth or MXNet .params file')
    parser.add_argument('dst', help='output mmcyc checkpoint (.pth)')
    parser.add_argument(
        '--layout',
        choices=('auto', ) + LAYOUTS,
        default='auto',
        help='key layout of SRC: imagenet (resnet38d), cls (res38_cls.pth), '
        'aff (res38_aff.pth); auto detects it from the head keys')
    parser.add_argument(
        '--allow-unknown',
        action='store_true',
        help='drop keys that fit no rule instead of failing')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        report = convert_checkpoint(args.src, args.dst, args.layout,
                                    args.allow_unknown)
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(report)
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
