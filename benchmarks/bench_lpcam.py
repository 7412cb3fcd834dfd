# Copyright (c) mmcyc contributors. All rights reserved.
"""LPCAM throughput: prototype clustering and maps, mmcyc vs the public code.

Both sides get the same synthetic vectors and feature maps, in the same run:

- clustering: every class's class set and context set (2 C sets of N
  vectors, D dims, K clusters).
  mmcyc: ``cosine_kmeans`` on all 2 C sets at once (padded batch).
  public: ``kmeans_pytorch.kmeans(distance='cosine')`` as LPCAM's
  ``make_lpcam.py`` calls it, one set after the other: random distinct
  initial points, distances by broadcasting ``(N, 1, D) * (1, K, D)``,
  then a Python loop over the K clusters for the means. Written out here
  (the package is not a dependency) with an iteration cap, which the
  original lacks, so an empty cluster (NaN centre) cannot hang the run.
  Both run ``--kmeans-iters`` Lloyd iterations (tol 0 / -1: a set stops
  early only when it has exactly converged); per-iteration figures are
  reported beside the totals.
- maps: LPCAM's map of the labelled classes of a (D, h, w) feature map.
  mmcyc: ``lpcam_map`` (all classes, two (C, D) products). public: per
  labelled class and per prototype, ``F.cosine_similarity`` of the
  feature map with the prototype repeated to (h, w, D), averaged, minus
  the same for the context prototypes, ReLU (``make_lpcam``'s inner loop).

    python benchmarks/bench_lpcam.py --threads 2            # CPU, D 256
    python benchmarks/bench_lpcam.py --device cuda          # D 4096

Benchmarks are not tests: nothing here asserts a time.
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from mmcyc.models.classifiers.lpcam import lpcam_map
from mmcyc.models.utils import cosine_kmeans


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cuda = torch.cuda.is_available()
    parser.add_argument('--device', default='cuda' if cuda else 'cpu')
    parser.add_argument('--iters', type=int, default=None,
                        help='feature maps timed; 50 on CUDA, 10 on CPU')
    parser.add_argument('--classes', type=int, default=20, help='C')
    parser.add_argument('--points', type=int, default=None,
                        help='N per set; 8192 on CUDA, 2048 on CPU')
    parser.add_argument('--dim', type=int, default=None,
                        help="D; 4096 on CUDA (ResNet-38's), 256 on CPU")
    parser.add_argument('--clusters', type=int, default=12, help='K')
    parser.add_argument('--kmeans-iters', type=int, default=20)
    parser.add_argument('--grid', type=int, nargs=2, default=None,
                        help='feature map h w; 63 47 on CUDA (a VOC image '
                        'at stride 8), 24 24 on CPU')
    parser.add_argument('--labels', type=int, default=2,
                        help='labelled classes per image')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    on_cuda = args.device.startswith('cuda')
    args.iters = args.iters or (50 if on_cuda else 10)
    args.points = args.points or (8192 if on_cuda else 2048)
    args.dim = args.dim or (4096 if on_cuda else 256)
    args.grid = args.grid or ((63, 47) if on_cuda else (24, 24))
    return args


def synced(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def public_pairwise_cosine(data1, data2):
    """kmeans_pytorch.pairwise_cosine: 1 - cos by broadcasting."""
    a = data1.unsqueeze(dim=1)  # (N, 1, D)
    b = data2.unsqueeze(dim=0)  # (1, K, D)
    a_normalized = a / a.norm(dim=-1, keepdim=True)
    b_normalized = b / b.norm(dim=-1, keepdim=True)
    cosine = a_normalized * b_normalized  # (N, K, D)
    return 1 - cosine.sum(dim=-1).squeeze()


def public_kmeans(x, num_clusters, max_iters, tol=-1.0):
    """kmeans_pytorch.kmeans(distance='cosine') with an iteration cap."""
    indices = np.random.choice(len(x), num_clusters, replace=False)
    state = x[indices].clone()
    iteration = 0
    while iteration < max_iters:
        dis = public_pairwise_cosine(x, state)
        choice_cluster = torch.argmin(dis, dim=1)
        state_pre = state.clone()
        for index in range(num_clusters):
            selected = torch.nonzero(choice_cluster == index).squeeze()
            selected = torch.index_select(x, 0, selected)
            state[index] = selected.mean(dim=0)
        center_shift = torch.sum(
            torch.sqrt(torch.sum((state - state_pre)**2, dim=1)))
        iteration += 1
        if center_shift**2 < tol:
            break
    return choice_cluster, state, iteration


def public_map(feature, protos, ctx):
    """make_lpcam's map of one class: (D, h, w) -> (1, 1, h, w)."""
    dim, h, w = feature.shape
    feature_here = feature.permute((1, 2, 0)).reshape(h, w, dim)
    att_maps = []
    for j in range(protos.shape[0]):
        proto_here = protos[j].repeat(h, w, 1)
        att_maps.append(
            F.cosine_similarity(feature_here, proto_here, 2)[None, None])
    att_map = torch.mean(torch.cat(att_maps, 0), 0, keepdim=True)
    if ctx.shape[0] > 0:
        ctx_maps = []
        for j in range(ctx.shape[0]):
            ctx_here = ctx[j].repeat(h, w, 1)
            ctx_maps.append(
                F.cosine_similarity(feature_here, ctx_here, 2)[None, None])
        att_map = F.relu(att_map - torch.mean(torch.cat(ctx_maps, 0), 0))
    return att_map


def main():
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = args.device
    gen = torch.Generator().manual_seed(args.seed)
    np.random.seed(args.seed)
    num_sets = 2 * args.classes
    # (2C, N, D): non-negative vectors around 6 directions per set
    dirs = torch.rand(num_sets, 6, args.dim, generator=gen)
    which = torch.randint(0, 6, (num_sets, args.points), generator=gen)
    points = dirs.gather(1, which[..., None].expand(-1, -1, args.dim))
    points = (points + 0.3 * torch.rand(points.shape, generator=gen)).to(
        device)

    # clustering
    cosine_kmeans(points[:2, :64], args.clusters, max_iters=2)  # warm-up
    synced(device)
    start = time.perf_counter()
    ours = cosine_kmeans(points, args.clusters, max_iters=args.kmeans_iters,
                         tol=0.0, init='random',
                         generator=torch.Generator().manual_seed(args.seed))
    synced(device)
    ours_s = time.perf_counter() - start
    ours_iters = int(ours.iterations.sum())
    start = time.perf_counter()
    public_iters = 0
    for s in range(num_sets):
        _, _, its = public_kmeans(points[s], args.clusters,
                                  args.kmeans_iters)
        public_iters += its
    synced(device)
    public_s = time.perf_counter() - start

    # maps
    protos = ours.centres[:args.classes]  # (C, K, D)
    ctx = ours.centres[args.classes:]
    pmask = torch.ones(args.classes, args.clusters, dtype=torch.bool,
                       device=device)
    cmask = pmask.clone()
    pmask[:, args.clusters // 2:] = False  # about half pass p > 0.9
    cmask[:, args.clusters // 3:] = False
    feats = torch.rand(args.iters, args.dim, *args.grid, generator=gen).to(
        device)
    labels = [torch.randperm(args.classes, generator=gen)[:args.labels]
              for _ in range(args.iters)]
    lpcam_map(feats[:1], protos, pmask, ctx, cmask)  # warm-up
    synced(device)
    start = time.perf_counter()
    ours_maps = [lpcam_map(feats[i:i + 1], protos, pmask, ctx, cmask)[0]
                 for i in range(args.iters)]
    synced(device)
    ours_map_s = (time.perf_counter() - start) / args.iters
    start = time.perf_counter()
    max_diff = 0.0
    for i in range(args.iters):
        for c in labels[i].tolist():
            ref = public_map(feats[i], protos[c][pmask[c]], ctx[c][cmask[c]])
            max_diff = max(max_diff,
                           float((ref[0, 0] - ours_maps[i][c]).abs().max()))
    synced(device)
    public_map_s = (time.perf_counter() - start) / args.iters

    figures = dict(
        device=device,
        device_name=(torch.cuda.get_device_name()
                     if device.startswith('cuda') else 'cpu'),
        torch_threads=torch.get_num_threads(),
        sets=num_sets, points_per_set=args.points, dim=args.dim,
        clusters=args.clusters, kmeans_iters_cap=args.kmeans_iters,
        kmeans_ours_s=round(ours_s, 3),
        kmeans_public_s=round(public_s, 3),
        kmeans_ours_iterations=ours_iters,
        kmeans_public_iterations=public_iters,
        kmeans_ours_ms_per_set_iteration=round(1e3 * ours_s / ours_iters, 3),
        kmeans_public_ms_per_set_iteration=round(
            1e3 * public_s / public_iters, 3),
        kmeans_speedup_per_iteration=round(
            (public_s / public_iters) / (ours_s / ours_iters), 1),
        kmeans_speedup_total=round(public_s / ours_s, 1),
        map_grid=list(args.grid), labels_per_image=args.labels,
        map_ours_ms_per_image=round(1e3 * ours_map_s, 3),
        map_public_ms_per_image=round(1e3 * public_map_s, 3),
        map_speedup=round(public_map_s / ours_map_s, 1),
        map_max_abs_diff=max_diff)
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=2)


if __name__ == '__main__':
    main()
