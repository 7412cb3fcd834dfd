# Copyright (c) mmcyc contributors. All rights reserved.
"""Convert AffinityNet (jiwoon-ahn/psa) VGG-16 weights to mmcyc keys.

Sources (bare state dicts or ``{'state_dict': ...}``, DataParallel
``module.`` prefixes allowed): the torch state dict of
``vgg16_20M.caffemodel`` (psa's ``network.vgg16d.convert_caffe_to_torch``,
which needs pycaffe, saved with ``torch.save``), psa's trained
``vgg16_cls`` and ``vgg16_aff`` weights. ResNet-38 weights go through
``psa2mmcyc.py``.

Example::

    python tools/model_converters/psa_vgg2mmcyc.py \\
        vgg16_20M.pth pretrain/vgg16d_imagenet.pth

The result loads with ``init_cfg=dict(type='Pretrained', checkpoint=DST,
prefix='backbone.')`` on ``VGG16d`` or ``load_from=DST`` on a whole model
(``configs/cam_vgg16_voc.py``, ``configs/aff_vgg16_voc.py``).
"""
import sys

from mmcyc.converters.cli import build_parser, run_conversion
from mmcyc.converters.psa_vgg16_keys import (VGG16_LAYOUTS,
                                             convert_vgg16_checkpoint)


def parse_args(argv=None):
    return build_parser(
        description='Convert psa VGG-16 checkpoints to mmcyc',
        src_help='psa VGG-16 .pth file',
        layouts=VGG16_LAYOUTS,
        layout_help=('key layout of SRC: imagenet (vgg16d, from the caffe '
                     'model), cls (vgg16_cls), aff (vgg16_aff); auto '
                     'detects it from the head keys')).parse_args(argv)


def main(argv=None):
    return run_conversion(convert_vgg16_checkpoint, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
