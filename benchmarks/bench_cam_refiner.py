# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 3 throughput: CAM refinement with the feature bank vs Algorithm 2.

Both refine the same targets with the same N sampled reference images
(``CAMRefiner.sample_references``) and the same CyCSNet network F, in the
same run:

- bank (mmcyc): F on the target, then ``CAMRefiner.refine``: the sampled
  images' banked vectors, Eq. 3-4 and 14 for all of them at once (chunked);
- Algorithm 2 as written: F on the target, then for each of the N sampled
  images, F on that image, its vectors where its CAM exceeds beta1, and Eq.
  14 for that image (at F's resolution; see ``run_naive``). The CAMs of
  the sampled images are read from memory (the algorithm's "obtain CAMs by
  C" would add classifier passes: the baseline is, if anything, favoured).

The bank's one-off build (F on every bank image) is timed separately and
the number of targets after which it pays off is printed. FLOPs per target
count F's forward (``mmengine.analysis.FlopAnalyzer``) and the similarity
product of Eq. 3 (``2 S D h w``) plus ~5 flops per softmax entry.

    python benchmarks/bench_cam_refiner.py --threads 1          # CPU, 96^2
    python benchmarks/bench_cam_refiner.py --device cuda        # 448^2, D 2048

Images, labels and CAMs are synthetic (smooth random blobs, ~30 % of the
positions of each labelled class above beta1). Benchmarks are not tests:
nothing here asserts a time.
"""
import argparse
import json
import tempfile
import time

import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer
from mmseg.registry import MODELS

import mmcyc.models  # noqa: F401  (registers ResNet38)
from mmcyc.apis.feature_bank_io import cached_feature_bank  # noqa: E402
from mmcyc.models.refiners import CAMRefiner, FeatureBank
from mmcyc.models.refiners.feature_bank import seeded_generator
from mmcyc.models.utils.cam_refinement import (apply_refinement,
                                               class_refinement_maps)
from mmcyc.utils import CAMStore


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cuda = torch.cuda.is_available()
    parser.add_argument('--device', default='cuda' if cuda else 'cpu')
    parser.add_argument('--size', type=int, default=None,
                        help='image side; 448 on CUDA, 96 on CPU')
    parser.add_argument('--widen-factor', type=float, default=None,
                        help="ResNet-38's width; 1.0 on CUDA, 0.125 on CPU")
    parser.add_argument('--num-refs', type=int, default=128, help='N')
    parser.add_argument('--max-vectors', type=int, default=64,
                        help='K, bank vectors per (image, class)')
    parser.add_argument('--bank-images', type=int, default=None,
                        help='M; 512 on CUDA, 320 on CPU')
    parser.add_argument('--classes', type=int, default=5,
                        help='classes of the synthetic labels (fewer classes '
                        'give more candidates per target for a small M)')
    parser.add_argument('--targets', type=int, default=8,
                        help='targets timed with the bank')
    parser.add_argument('--naive-targets', type=int, default=2,
                        help='targets timed with Algorithm 2')
    parser.add_argument('--chunk-size', type=int, default=4096)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    on_cuda = args.device.startswith('cuda')
    if args.size is None:
        args.size = 448 if on_cuda else 96
    if args.widen_factor is None:
        args.widen_factor = 1.0 if on_cuda else 0.125
    if args.bank_images is None:
        args.bank_images = 512 if on_cuda else 320
    return args


def synthetic_data(args):
    """Images (M + T, 3, S, S), labels (M + T, C) and CAMs (M + T, C, S, S)."""
    gen = torch.Generator().manual_seed(args.seed)
    total = args.bank_images + args.targets
    images = torch.randn(total, 3, args.size, args.size, generator=gen)
    labels = torch.zeros(total, args.classes)
    for i in range(total):
        count = 1 + int(torch.rand((), generator=gen) < 0.5)
        labels[i, torch.randperm(args.classes, generator=gen)[:count]] = 1
    low = torch.rand(total, args.classes, 6, 6, generator=gen)
    cams = F.interpolate(low, size=(args.size, args.size), mode='bilinear',
                         align_corners=False)
    # ~30 % of a class map above beta1 = 0.3, the rest below
    cams = ((cams - cams.flatten(2).quantile(0.7, dim=2)[..., None, None]) +
            0.3).clamp(0, 1) * labels[..., None, None]
    return images, labels, cams


def synced(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def main():
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = args.device
    torch.manual_seed(args.seed)
    net = MODELS.build(
        dict(type='ResNet38', with_b7=False, out_indices=(2, ),
             widen_factor=args.widen_factor)).to(device).eval()

    @torch.no_grad()
    def feature(image):  # (3, S, S) -> F (D, h, w)
        return net(image[None].to(device))[0][0]

    images, labels, cams = synthetic_data(args)
    num_bank = args.bank_images
    names = [f'bank_{i:05d}' for i in range(num_bank)]
    refiner = CAMRefiner(
        num_refs=args.num_refs, max_vectors_per_image=args.max_vectors,
        seed=args.seed, chunk_size=args.chunk_size)
    with tempfile.TemporaryDirectory() as cam_dir:
        store = CAMStore(cam_dir)
        for i, name in enumerate(names):
            store.save(name, cams[i], labels[i])
        feature(images[0])  # warm-up
        synced(device)
        start = time.perf_counter()
        bank = cached_feature_bank(
            refiner, lambda idx: (feature(images[i]) for i in idx), names,
            labels[:num_bank], store)
        synced(device)
        build_s = time.perf_counter() - start
    bank.to(device)
    dense_cams = {n: cams[i] for i, n in enumerate(names)}  # "C_s by C"

    targets = list(range(num_bank, num_bank + args.targets))

    def run_bank(t):
        return refiner.refine(cams[t].to(device), feature(images[t]),
                              labels[t], f'target_{t}')

    def run_naive(t):
        """Algorithm 2: F on each sampled image, Eq. 14 image by image.

        Eq. 14 runs at F's resolution on the running class maxima R (the
        thresholded max commutes with the loop), and R is upsampled to the
        CAM once at the end, as ``CAMRefiner`` does.
        """
        label_t = labels[t].to(device)
        feat_t = feature(images[t])
        ref = torch.zeros(args.classes, *feat_t.shape[1:], device=device)
        for s in refiner.sample_references(labels[t], f'target_{t}').tolist():
            feat_s = feature(images[s])
            vec, cls = FeatureBank.select(
                feat_s, dense_cams[names[s]],
                labels[s] * labels[t], refiner.beta1, args.max_vectors,
                seeded_generator(args.seed, 'bank/' + names[s]))
            ref = torch.maximum(ref, class_refinement_maps(
                vec, cls, feat_t, args.classes, refiner.alpha,
                refiner.epsilon, args.chunk_size))
        has_ref = ref.flatten(1).amax(1) > 0
        return apply_refinement(cams[t].to(device), ref,
                                has_ref & (label_t > 0.5), refiner.bg_score)

    run_bank(targets[0])  # warm-up
    synced(device)
    start = time.perf_counter()
    bank_out = [run_bank(t) for t in targets]
    synced(device)
    bank_s = (time.perf_counter() - start) / len(targets)
    naive_targets = targets[:args.naive_targets]
    start = time.perf_counter()
    naive_out = [run_naive(t) for t in naive_targets]
    synced(device)
    naive_s = (time.perf_counter() - start) / len(naive_targets)
    max_diff = max(
        float((a - b).abs().max()) for a, b in zip(bank_out, naive_out))

    # FLOPs per target
    net_flops = FlopAnalyzer(net.cpu(), (torch.zeros(
        1, 3, args.size, args.size), )).total()
    vectors = [
        len(bank.gather(refiner.sample_references(labels[t], f'target_{t}'),
                        labels[t] > 0.5)[0]) for t in targets
    ]
    mean_vectors = sum(vectors) / len(vectors)
    positions = (-(-args.size // 8))**2
    eq14_flops = mean_vectors * positions * (2 * bank.channels + 5)
    bank_flops = net_flops + eq14_flops
    naive_flops = (args.num_refs + 1) * net_flops + eq14_flops

    figures = dict(
        device=device,
        device_name=(torch.cuda.get_device_name()
                     if device.startswith('cuda') else 'cpu'),
        torch_threads=torch.get_num_threads(),
        image_size=args.size,
        widen_factor=args.widen_factor,
        channels=bank.channels,
        feature_positions=positions,
        num_refs=args.num_refs,
        max_vectors_per_image=args.max_vectors,
        bank_images=num_bank,
        bank_vectors=len(bank),
        bank_mb=round(bank.vectors.numel() * 2 / 2**20, 1),
        bank_build_s=round(build_s, 2),
        bank_build_images_per_s=round(num_bank / build_s, 1),
        mean_reference_vectors_per_target=round(mean_vectors, 1),
        bank_s_per_target=round(bank_s, 4),
        naive_s_per_target=round(naive_s, 3),
        bank_targets_per_s=round(1 / bank_s, 2),
        naive_targets_per_s=round(1 / naive_s, 3),
        speedup=round(naive_s / bank_s, 1),
        build_pays_off_after_targets=round(build_s / (naive_s - bank_s), 1),
        net_gflops_per_image=round(net_flops / 1e9, 3),
        bank_gflops_per_target=round(bank_flops / 1e9, 3),
        naive_gflops_per_target=round(naive_flops / 1e9, 3),
        flops_ratio=round(naive_flops / bank_flops, 1),
        max_abs_diff_bank_vs_naive=max_diff)
    print(json.dumps(figures, indent=2))
    print(f'speedup (Algorithm 2 / bank): {figures["speedup"]}x at '
          f'N = {args.num_refs}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=2)


if __name__ == '__main__':
    main()
