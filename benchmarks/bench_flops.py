# Copyright (c) mmcyc contributors. All rights reserved.
"""Compute of the full VOC recipe, stage by stage, from counted FLOPs.

The forward multiply-accumulates (MACs) of every network are counted by
mmengine's ``FlopAnalyzer`` on the full-width models of the VOC configs at one
input size; convolutions are linear in the input area, so other sizes scale
by area (exact up to border effects). Training counts 3x the forward (forward
+ backward for activations and weights; 2x for frozen networks that only run
forward). The head-, refiner- and walk-level products are counted from their
shapes. The totals are divided by an assumed sustained GPU rate to give time
*estimates* (not measurements) for the README's VOC recipe:

    python benchmarks/bench_flops.py [--tmacs 60] [--json OUT]

``--tmacs``: the assumed sustained tera-MACs/s of one GPU. The default, 31,
is 40 % of an A100's dense TF32 peak (156 TFLOP/s = 78 TMAC/s), TF32 being
what cuDNN uses for fp32 convolutions by default; with ``--amp`` (fp16,
312 TFLOP/s) roughly double it. Replace it by a measured rate when a GPU is
at hand (``benchmarks/bench_cam.py --size 448 --widen-factor 1``).

Benchmarks are not tests: nothing here asserts a time.
"""
import argparse
import json
import os.path as osp

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmcyc  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# PASCAL VOC 2012 + SBD
TRAIN_AUG, TRAIN, VAL = 10582, 1464, 1449
VOC_IMAGE = (500, 375)  # the typical VOC image (most are 500 px wide)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tmacs', type=float, default=31.0,
                        help='assumed sustained tera-MACs/s of one GPU')
    parser.add_argument('--json', help='also write the figures here')
    return parser.parse_args()


class Forward(torch.nn.Module):
    """Wraps ``model(x, mode='tensor')`` (or a callable) for the tracer."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def gmacs(fn, modules, size):
    """Forward GMACs of ``fn`` on one ``(3, H, W)`` image of ``size``."""
    wrapper = Forward(fn)
    wrapper.modules_ = torch.nn.ModuleList(modules)  # for the analyzer
    wrapper.eval()
    x = torch.zeros(1, 3, *size)
    with torch.no_grad():
        analyzer = FlopAnalyzer(wrapper, (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return analyzer.total() / 1e9


def build(config, key='model', **overrides):
    cfg = Config.fromfile(osp.join(REPO, config))
    model_cfg = cfg[key]
    model_cfg.update(overrides)
    return cfg, MODELS.build(model_cfg)


def main():
    args = parse_args()
    init_default_scope('mmseg')
    crop = (448, 448)
    area = crop[0] * crop[1]
    voc_area = VOC_IMAGE[0] * VOC_IMAGE[1]
    rows = {}

    # stage 1: classifier (448 crops) and multi-scale + flip CAM inference
    cam_cfg, cam = build('configs/cam_resnet38_voc.py')
    cls_fwd = gmacs(lambda x: cam(x, mode='tensor'), [cam], crop)
    epochs = cam_cfg.train_cfg.max_epochs
    scales = cam_cfg.model.test_cfg.scales
    cam_per_image = cls_fwd * sum(s * s for s in scales) * 2 * voc_area / area
    rows['1 classifier training'] = dict(
        work=f'{TRAIN_AUG} images x {epochs} epochs, 448 crops',
        gmacs_per_item=3 * cls_fwd, items=TRAIN_AUG * epochs)
    rows['1b CAM inference'] = dict(
        work=f'{TRAIN_AUG + VAL} images, scales {tuple(scales)} x flip',
        gmacs_per_item=cam_per_image, items=TRAIN_AUG + VAL)

    # stage 2: per pair F on A and B (trained), C on A (frozen), the head
    cyc_cfg = Config.fromfile(osp.join(REPO, 'configs/cyc_resnet38_voc.py'))
    backbone = MODELS.build(cyc_cfg.model.backbone)
    f_fwd = gmacs(backbone, [backbone], crop)
    hw = area // 64
    dim = 2048
    selected = 600  # positions above beta1 in A (bench_cycle_head)
    # W^f = V F_B, retrieval W^f F_B^T, W^b = V' F_A: three n x D x hw
    head_fwd = 3 * selected * dim * hw / 1e9
    epochs = cyc_cfg.train_cfg.max_epochs
    rows['2 CyCSNet training'] = dict(
        work=f'{TRAIN_AUG} pairs x {epochs} epochs, 448 crops',
        gmacs_per_item=2 * 3 * f_fwd + cls_fwd + 3 * head_fwd,
        items=TRAIN_AUG * epochs)

    # stage 3: the bank (F on every train_aug image at scale 1) and Eq. 14
    refiner = cyc_cfg.refiner
    # W^f of N x K reference vectors (one shared class, K reached) over the
    # target's positions
    per_target = (refiner.num_refs * refiner.max_vectors_per_image * dim *
                  (voc_area // 64)) / 1e9
    rows['3 refinement'] = dict(
        work=f'bank of {TRAIN_AUG} images + {TRAIN_AUG} targets, '
        f'N = {refiner.num_refs}, K = {refiner.max_vectors_per_image}',
        gmacs_per_item=f_fwd * voc_area / area + per_target,
        items=TRAIN_AUG)

    # stage 4: AffinityNet training (448 crops) and the walk (VOC images)
    aff_cfg, aff = build('configs/aff_resnet38_voc.py')
    aff_fwd = gmacs(lambda x: aff(x, mode='tensor'), [aff], crop)
    epochs = aff_cfg.train_cfg.max_epochs
    rows['4 AffinityNet training'] = dict(
        work=f'{TRAIN_AUG} images x {epochs} epochs, 448 crops',
        gmacs_per_item=3 * aff_fwd, items=TRAIN_AUG * epochs)
    positions = voc_area // 64
    # 34 offsets both ways + identity, 21 score channels, 256 steps
    walk = 256 * positions * (2 * 34 + 1) * 21 / 1e9
    rows['4 random walk (train_aug, twice: plain and refined)'] = dict(
        work=f'2 x {TRAIN_AUG} images, t = 256',
        gmacs_per_item=aff_fwd * voc_area / area + walk,
        items=2 * TRAIN_AUG)

    # stage 5: mmseg's DeepLabV3+ R-101-D8, 20k iterations of 16 512 crops
    seg_cfg = Config.fromfile(
        osp.join(REPO, 'configs/deeplabv3plus_r101-d8_voc-pseudo.py'))
    seg_cfg.model.pretrained = None
    seg = MODELS.build(seg_cfg.model)
    seg_fwd = gmacs(lambda x: seg(x, mode='tensor'), [seg], (512, 512))
    iters = seg_cfg.train_cfg.max_iters
    rows['5 DeepLabV3+ R-101 training'] = dict(
        work=f'{iters} iterations x 16 crops of 512', gmacs_per_item=3 *
        seg_fwd, items=iters * 16)

    total = 0.0
    print(f'forward GMACs: ResNet-38 classifier {cls_fwd:.1f} (448^2), '
          f'F (through b6) {f_fwd:.1f}, AffinityNet {aff_fwd:.1f}, '
          f'DeepLabV3+ R-101 {seg_fwd:.1f} (512^2)')
    print(f'| stage | work | GMAC per item | PMAC | GPU-hours at '
          f'{args.tmacs:g} TMAC/s |')
    print('|---|---|---|---|---|')
    for name, row in rows.items():
        row['pmacs'] = row['gmacs_per_item'] * row['items'] / 1e6
        row['gpu_hours'] = row['pmacs'] * 1e3 / args.tmacs / 3600
        total += row['gpu_hours']
        print(f"| {name} | {row['work']} | {row['gmacs_per_item']:.0f} | "
              f"{row['pmacs']:.1f} | {row['gpu_hours']:.1f} |")
    print(f'| total | | | | {total:.1f} |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(tmacs=args.tmacs, rows=rows, total_gpu_hours=total,
                           forward_gmacs=dict(classifier=cls_fwd, f=f_fwd,
                                              aff=aff_fwd, seg=seg_fwd)),
                      f, indent=2)


if __name__ == '__main__':
    main()
