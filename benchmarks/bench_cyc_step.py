# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 2 throughput: a whole CyCSNet training step (pairs/s) and the
cycle-consistency head's share of it.

The step is forward (F on A and B, the frozen classifier on A, the head, the
classification branch), backward and an SGD update. The head's share is
measured in the same run by timing ``head.loss`` plus the backward of its
loss alone on the same features.

    python benchmarks/bench_cyc_step.py                       # CPU, synthetic
    python benchmarks/bench_cyc_step.py --size 448 --widen-factor 1 \
        --pairs 8 --device cuda

Benchmarks are not tests: nothing here asserts a time.
"""
import argparse
import json
import time

import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=96)
    parser.add_argument('--widen-factor', type=float, default=0.125)
    parser.add_argument('--pairs', type=int, default=8)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--json', help='also write the figures here')
    return parser.parse_args()


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def build(args):
    backbone = dict(type='ResNet38', widen_factor=args.widen_factor,
                    norm_eval=False)
    model = MODELS.build(
        dict(
            type='CyCSNet',
            backbone=dict(backbone, with_b7=False, out_indices=(2, )),
            head=dict(type='CycleConsistencyHead'),
            cam_classifier=dict(
                type='CAMClassifier',
                backbone=dict(backbone, out_indices=(3, )),
                num_classes=20)))
    return model.to(args.device).train()


def batch(args):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(2 * args.pairs, 3, args.size, args.size,
                         generator=gen).to(args.device)
    samples = []
    for i in range(2 * args.pairs):
        s = SegDataSample()
        label = torch.zeros(20)
        label[[i % 20, (i + 1) % 20]] = 1
        s.gt_img_label = label.to(args.device)
        samples.append(s)
    for i in range(args.pairs):
        shared = samples[i].gt_img_label * samples[args.pairs +
                                                   i].gt_img_label
        if shared.sum() == 0:
            shared = samples[i].gt_img_label.clone()
            samples[args.pairs + i].gt_img_label = shared.clone()
        samples[i].gt_shared_label = shared
        samples[args.pairs + i].gt_shared_label = shared
    return inputs, samples


def main():
    args = parse_args()
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = build(args)
    # a CAM above beta1 everywhere on the labelled classes: the classifier is
    # untrained here, so its CAM would select an arbitrary number of positions
    model.cam_a = lambda inputs_a, labels, size: labels[..., None, None].expand(
        -1, -1, *size).float()
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4,
        momentum=0.9)
    inputs, samples = batch(args)

    def step():
        losses = model.loss(inputs, samples)
        loss = losses['loss_cyc'] + losses['loss_cls']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return losses

    losses = step()  # warm-up
    sync(args.device)
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    sync(args.device)
    step_s = (time.perf_counter() - start) / args.iters

    # the head alone, forward + backward, on the same features
    with torch.no_grad():
        feats = model.extract_feat(inputs)
    feat_a = feats[:args.pairs].clone().requires_grad_()
    feat_b = feats[args.pairs:].clone().requires_grad_()
    labels = torch.stack([s.gt_img_label for s in samples[:args.pairs]])
    shared = torch.stack([s.gt_shared_label for s in samples[:args.pairs]])
    cam_a = model.cam_a(inputs[:args.pairs], labels, feats.shape[2:])
    model.head.loss(feat_a, feat_b, cam_a, shared)['loss_cyc'].backward()
    sync(args.device)
    start = time.perf_counter()
    for _ in range(args.iters):
        model.head.loss(feat_a, feat_b, cam_a,
                        shared)['loss_cyc'].backward()
    sync(args.device)
    head_s = (time.perf_counter() - start) / args.iters

    result = dict(
        device=torch.cuda.get_device_name() if args.device.startswith('cuda')
        else f'cpu ({torch.get_num_threads()} threads)',
        size=args.size,
        feature_size=list(feats.shape[2:]),
        channels=feats.shape[1],
        widen_factor=args.widen_factor,
        pairs=args.pairs,
        selected_per_step=float(losses['cyc_num_candidates']),
        step_s=round(step_s, 4),
        pairs_per_s=round(args.pairs / step_s, 2),
        head_s=round(head_s, 4),
        head_share=round(head_s / step_s, 3))
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
