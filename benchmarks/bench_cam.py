# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 1 throughput: classifier training (images/s) and CAM inference.

CAM inference is compared, in the same run, with a naive reference written
the way AffinityNet's ``infer_cls.py`` works: one forward pass per
(scale, flip), each result moved to numpy, upsampled, masked and summed
there, then normalised per class in a Python loop.

    python benchmarks/bench_cam.py                       # CPU, synthetic size
    python benchmarks/bench_cam.py --size 448 --widen-factor 1 --device cuda

Benchmarks are not tests: nothing here asserts a time.
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=96, help='image side')
    parser.add_argument('--widen-factor', type=float, default=0.125)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--images', type=int, default=8,
                        help='images for CAM inference')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (fp16 on CUDA, bf16 on CPU)')
    parser.add_argument('--json', help='also write the figures here')
    return parser.parse_args()


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def build_model(args, scales):
    model = MODELS.build(
        dict(
            type='CAMClassifier',
            backbone=dict(
                type='ResNet38',
                widen_factor=args.widen_factor,
                out_indices=(3, ),
                frozen_stages=1,
                norm_eval=True),
            num_classes=20,
            test_cfg=dict(scales=scales, flip=True)))
    return model.to(args.device)


def bench_train(model, args):
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(args.batch_size, 3, args.size, args.size,
                    device=args.device)
    samples = []
    for i in range(args.batch_size):
        s = SegDataSample()
        label = torch.zeros(20)
        label[i % 20] = 1
        s.gt_img_label = label.to(args.device)
        samples.append(s)
    dtype = torch.float16 if args.device.startswith('cuda') else torch.bfloat16
    device_type = 'cuda' if args.device.startswith('cuda') else 'cpu'

    def step():
        with torch.autocast(device_type, dtype=dtype, enabled=args.amp):
            loss = model(x, samples, mode='loss')['loss_cls']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    sync(args.device)
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    sync(args.device)
    return args.iters * args.batch_size / (time.perf_counter() - start)


def naive_cam(model, image, label, scales):
    """AffinityNet-style CAM: one pass per (scale, flip), numpy sum."""
    height, width = image.shape[2:]
    cam_list = []
    for scale in scales:
        size = (round(height * scale), round(width * scale))
        scaled = F.interpolate(image, size=size, mode='bilinear',
                               align_corners=False)
        for flip in (False, True):
            x = scaled.flip(-1) if flip else scaled
            cam = model.cam(x)
            cam = F.interpolate(cam, (height, width), mode='bilinear',
                                align_corners=False)[0]
            cam = cam.cpu().numpy() * label.view(20, 1, 1).cpu().numpy()
            cam_list.append(np.flip(cam, axis=-1) if flip else cam)
    sum_cam = np.sum(cam_list, axis=0)
    norm_cam = np.zeros_like(sum_cam)
    for c in range(sum_cam.shape[0]):
        norm_cam[c] = sum_cam[c] / (sum_cam[c].max() + 1e-5)
    return norm_cam


def bench_cam(model, args, scales):
    model.eval()
    images = torch.randn(args.images, 1, 3, args.size, args.size,
                         device=args.device)
    label = torch.zeros(20, device=args.device)
    label[[3, 7]] = 1
    samples = []
    for _ in range(args.images):
        s = SegDataSample(metainfo=dict(img_shape=(args.size, args.size),
                                        ori_shape=(args.size, args.size)))
        s.gt_img_label = label
        samples.append(s)
    with torch.no_grad():
        ours = model.predict(images[0], [samples[0]])[0].pred_cam.data
        ref = naive_cam(model, images[0], label, scales)
        max_diff = float((ours.cpu() - torch.from_numpy(ref)).abs().max())
        timings = {}
        for name, fn in (
            ('mmcyc', lambda i: model.predict(images[i], [samples[i]])),
            ('naive', lambda i: naive_cam(model, images[i], label, scales)),
        ):
            sync(args.device)
            start = time.perf_counter()
            for i in range(args.images):
                fn(i)
            sync(args.device)
            timings[name] = args.images / (time.perf_counter() - start)
    return timings, max_diff


def main():
    args = parse_args()
    init_default_scope('mmseg')
    torch.manual_seed(0)
    scales = (1.0, 0.5, 1.5, 2.0)
    model = build_model(args, scales)
    params = sum(p.numel() for p in model.parameters())
    train_ips = bench_train(model, args)
    cam_ips, max_diff = bench_cam(model, args, scales)
    result = dict(
        device=torch.cuda.get_device_name() if args.device.startswith('cuda')
        else f'cpu ({torch.get_num_threads()} threads)',
        size=args.size,
        widen_factor=args.widen_factor,
        params_M=round(params / 1e6, 2),
        amp=args.amp,
        train_images_per_s=round(train_ips, 2),
        cam_images_per_s=round(cam_ips['mmcyc'], 3),
        cam_naive_images_per_s=round(cam_ips['naive'], 3),
        cam_speedup_vs_naive=round(cam_ips['mmcyc'] / cam_ips['naive'], 2),
        cam_max_abs_diff_vs_naive=max_diff)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
