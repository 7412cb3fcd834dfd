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
import sys

from mmcyc.converters.cli import build_parser, run_conversion
from mmcyc.converters.psa_keys import LAYOUTS, convert_checkpoint


def parse_args(argv=None):
    return build_parser(
        description='Convert psa / MXNet ResNet-38 checkpoints to mmcyc',
        src_help='psa .pth or MXNet .params file',
        layouts=LAYOUTS,
        layout_help=('key layout of SRC: imagenet (resnet38d), cls '
                     '(res38_cls.pth), aff (res38_aff.pth); auto detects '
                     'it from the head keys')).parse_args(argv)


def main(argv=None):
    return run_conversion(convert_checkpoint, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
