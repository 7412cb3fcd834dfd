# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 4 throughput: the sparse random walk vs psa's dense matrix squaring.

Both propagate the same (K, h, w) scores over the affinities of the same
(D, h, w) embedding, in the same run, from the embedding on (the network's
forward is not timed):

- sparse (mmcyc): ``AffinityRWPostprocessor`` = ``pair_affinity`` ->
  ``transition_matrix`` (sparse CSR, h w (2 P + 1) entries) -> ``steps``
  sparse products;
- dense (psa ``network/resnet38_aff.py`` ``forward(to_dense=True)`` and
  ``infer_aff.py``): affinities by ``index_select`` over psa's pair indices,
  a dense (hw, hw) matrix from a sparse COO one, ``** beta``, column
  normalisation, ``logt`` squarings, ``scores @ T``.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` above the inputs;
on CPU each method runs in fresh subprocesses, one timed and one reporting
its peak RSS (``ru_maxrss``, with a fixed glibc mmap threshold so freed
blocks are returned) above the RSS just before it, next to the size of its
transition matrix (psa's dense T and T @ T, or the CSR matrix).
``--sizes`` times the sparse walk alone at other map sizes to show that its
time and memory grow linearly with h w.

    python benchmarks/bench_random_walk.py --threads 1          # CPU, 56x56
    python benchmarks/bench_random_walk.py --device cuda

Benchmarks are not tests: nothing here asserts a time.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from mmcyc.models.postprocessors.affinity_rw_postprocessor import \
    AffinityRWPostprocessor
from mmcyc.models.utils.random_walk import pair_indices, radius_offsets


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--size', type=int, default=56,
                        help='feature map side h = w (56: a 448^2 input)')
    parser.add_argument('--dim', type=int, default=448,
                        help='embedding channels D')
    parser.add_argument('--classes', type=int, default=21,
                        help='score channels K (background + 20)')
    parser.add_argument('--beta', type=float, default=8.0)
    parser.add_argument('--logt', type=int, default=8,
                        help='psa squares T logt times; the walk takes '
                        '2^logt steps')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs of the sparse walk (best kept)')
    parser.add_argument('--dense-repeats', type=int, default=1)
    parser.add_argument('--sizes', type=int, nargs='*', default=[28, 112],
                        help='extra map sides for the sparse walk alone')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the figures here')
    parser.add_argument('--worker', choices=['sparse', 'dense'],
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_inputs(size, dim, classes, seed, device):
    """A smooth random embedding (1, D, h, w) and scores (1, K, h, w)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, dim, size // 4 + 1, size // 4 + 1, generator=gen)
    embedding = torch.nn.functional.interpolate(
        coarse, size=(size, size), mode='bilinear', align_corners=False)
    scores = torch.rand(1, classes, size, size, generator=gen)
    return embedding.to(device), scores.to(device)


def run_sparse(embedding, scores, beta, steps):
    rw = AffinityRWPostprocessor(radius=5, beta=beta, steps=steps)
    return rw(embedding, scores)


@torch.no_grad()
def run_dense(embedding, scores, beta, logt):
    """psa's walk, transcribed with its dense (hw, hw) transition matrix."""
    _, dim, height, width = embedding.shape
    area = height * width
    device = embedding.device
    ind_from, ind_to = pair_indices(height, width, radius_offsets(5),
                                    device)
    ind_to = ind_to.reshape(-1)
    x = embedding.reshape(1, dim, -1)
    ff = torch.index_select(x, dim=2, index=ind_from).unsqueeze(2)
    ft = torch.index_select(x, dim=2, index=ind_to)
    ft = ft.view(1, dim, -1, ff.size(3))
    aff = torch.exp(-torch.mean(torch.abs(ft - ff), dim=1)).view(-1)
    ind_from_exp = ind_from.unsqueeze(0).expand(ft.size(2), -1).reshape(-1)
    identity = torch.arange(area, device=device)
    indices = torch.cat([
        torch.stack([ind_from_exp, ind_to]),
        torch.stack([identity, identity]),
        torch.stack([ind_to, ind_from_exp])
    ], dim=1)
    values = torch.cat([aff, torch.ones(area, device=device), aff])
    aff_mat = torch.sparse_coo_tensor(
        indices, values, (area, area), check_invariants=False).to_dense()
    aff_mat = torch.pow(aff_mat, beta)
    trans_mat = aff_mat / torch.sum(aff_mat, dim=0, keepdim=True)
    del aff_mat
    for _ in range(logt):
        trans_mat = torch.matmul(trans_mat, trans_mat)
    cam_vec = scores.reshape(scores.shape[1], -1)
    return torch.matmul(cam_vec, trans_mat).view(scores.shape)


def sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def timed(fn, device, repeats):
    best, out = float('inf'), None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def current_rss_mb():
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def matrix_mb(method, size):
    """Size of the transition matrix, MB: psa's dense T and T @ T (fp32),
    or mmcyc's CSR matrix (fp32 values, int64 column indices and row
    pointers)."""
    area = size * size
    if method == 'dense':
        return 2 * area * area * 4 / 2**20
    hc, wc = max(size - 4, 0), max(size - 8, 0)
    nnz = area + 2 * 34 * hc * wc
    return (nnz * (4 + 8) + (area + 1) * 8) / 2**20


def worker(args):
    """One method in this (fresh) process; prints its figures as JSON."""
    embedding, scores = make_inputs(args.size, args.dim, args.classes,
                                    args.seed, 'cpu')
    steps = 2**args.logt
    fn = (lambda: run_sparse(embedding, scores, args.beta, steps)) \
        if args.worker == 'sparse' else \
        (lambda: run_dense(embedding, scores, args.beta, args.logt))
    # Warm up on a tiny map, so that lazily loaded code and thread pools are
    # not counted as the method's memory.
    tiny = make_inputs(16, 8, 2, args.seed, 'cpu')
    if args.worker == 'sparse':
        run_sparse(*tiny, args.beta, 2)
    else:
        run_dense(*tiny, args.beta, 1)
    if os.environ.get('MALLOC_MMAP_THRESHOLD_'):
        # Memory run: one pass, peak RSS above the RSS before it.
        before = current_rss_mb()
        seconds, out = timed(fn, 'cpu', 1)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(dict(seconds=seconds, peak_mb=peak - before)))
        return
    repeats = args.repeats if args.worker == 'sparse' else \
        args.dense_repeats
    seconds, out = timed(fn, 'cpu', repeats)
    torch.save(out, os.environ['BENCH_RW_OUT'])
    print(json.dumps(dict(seconds=seconds)))


def cpu_figures(args, method, size):
    """Run one method in a subprocess; return (seconds, peak MB, output)."""
    out_path = f'/tmp/bench_rw_{os.getpid()}_{method}_{size}.pt'
    cmd = [
        sys.executable, __file__, '--worker', method, '--size',
        str(size), '--dim',
        str(args.dim), '--classes',
        str(args.classes), '--beta',
        str(args.beta), '--logt',
        str(args.logt), '--repeats',
        str(args.repeats), '--dense-repeats',
        str(args.dense_repeats), '--seed',
        str(args.seed)
    ]
    env = dict(os.environ, BENCH_RW_OUT=out_path)
    env.pop('MALLOC_MMAP_THRESHOLD_', None)
    if args.threads:
        env['OMP_NUM_THREADS'] = str(args.threads)
        env['MKL_NUM_THREADS'] = str(args.threads)

    def run(extra_env):
        proc = subprocess.run(cmd, env=dict(env, **extra_env),
                              capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    # Timing in one process, memory in another: a fixed glibc mmap
    # threshold returns every large freed block at once, so the RSS follows
    # the live tensors (glibc's default, adaptive threshold keeps freed
    # blocks and fragments), at some cost in speed.
    seconds = run({})['seconds']
    peak_mb = run(dict(MALLOC_MMAP_THRESHOLD_='131072'))['peak_mb']
    out = torch.load(out_path)
    os.remove(out_path)
    return seconds, peak_mb, out


def cuda_figures(args, method, size):
    embedding, scores = make_inputs(size, args.dim, args.classes, args.seed,
                                    args.device)
    steps = 2**args.logt
    fn = (lambda: run_sparse(embedding, scores, args.beta, steps)) \
        if method == 'sparse' else \
        (lambda: run_dense(embedding, scores, args.beta, args.logt))
    fn()  # warm-up (cuSPARSE / cuBLAS handles)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    seconds, out = timed(
        fn, args.device,
        args.repeats if method == 'sparse' else args.dense_repeats)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    return seconds, peak, out.cpu()


def main():
    args = parse_args()
    if args.worker:
        if args.threads:
            torch.set_num_threads(args.threads)
        worker(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    on_cuda = args.device.startswith('cuda')
    figures_of = cuda_figures if on_cuda else cpu_figures
    steps = 2**args.logt
    area = args.size**2
    sparse_s, sparse_mb, sparse_out = figures_of(args, 'sparse', args.size)
    dense_s, dense_mb, dense_out = figures_of(args, 'dense', args.size)
    rel = float((sparse_out.double() - dense_out.double()).abs().max() /
                dense_out.double().abs().max())
    result = dict(
        device=torch.cuda.get_device_name() if on_cuda else 'cpu',
        threads=None if on_cuda else (args.threads or
                                      torch.get_num_threads()),
        map=f'{args.size}x{args.size}', dim=args.dim, classes=args.classes,
        steps=steps, sparse_s=sparse_s, dense_s=dense_s,
        ratio=dense_s / sparse_s, sparse_peak_mb=sparse_mb,
        dense_peak_mb=dense_mb,
        sparse_matrix_mb=matrix_mb('sparse', args.size),
        dense_matrix_mb=matrix_mb('dense', args.size),
        max_rel_diff=rel, scaling=[])
    print(f'{result["map"]} map (hw = {area}), D = {args.dim}, K = '
          f'{args.classes}, t = {steps}, {result["device"]}'
          + ('' if on_cuda else f', {result["threads"]} thread(s)'))
    print(f'  sparse walk (mmcyc): {sparse_s:.3f} s, peak {sparse_mb:.1f} MB'
          f' (CSR matrix {result["sparse_matrix_mb"]:.1f} MB)')
    print(f'  dense squaring (psa): {dense_s:.3f} s, peak {dense_mb:.1f} MB'
          f' (T and T @ T {result["dense_matrix_mb"]:.1f} MB)')
    print(f'  ratio dense / sparse: {result["ratio"]:.1f}x, memory '
          f'{dense_mb / max(sparse_mb, 1e-9):.1f}x; max relative '
          f'difference {rel:.2e}')
    for size in args.sizes:
        seconds, peak, _ = figures_of(args, 'sparse', size)
        result['scaling'].append(
            dict(map=f'{size}x{size}', hw=size * size, sparse_s=seconds,
                 sparse_peak_mb=peak,
                 sparse_matrix_mb=matrix_mb('sparse', size)))
        print(f'  sparse walk at {size}x{size} (hw = {size * size}): '
              f'{seconds:.3f} s, peak {peak:.1f} MB (CSR matrix '
              f'{matrix_mb("sparse", size):.1f} MB)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
