# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 2 throughput: CycleConsistencyHead forward + backward (pairs/s).

The batched head is compared, in the same run and on the same inputs, with
two references implementing the same loss:

- ``naive``: a loop over the pairs and over every selected position,
  computing Eq. 3-8 one vector at a time with a dense Eq. 10-11 mask per
  position and one ``.item()`` (a host sync) per position for DCFS;
- ``per_pair``: the baseline a user would write, one batched product per
  pair: the selected vectors of a pair as one (S, D) matrix, Eq. 3-8 with
  whole-matrix ops and a dense (S, h*w) Eq. 10-11 mask, a Python loop over
  the pairs only (one boolean selection, i.e. one sync, per pair).

The head is also timed with ``selection_buffer='fixed'`` (S = h*w without
``--max-selected``: no host sync, more work), the option that keeps the
training step free of host syncs.

    python benchmarks/bench_cycle_head.py                   # CPU, D = 256
    python benchmarks/bench_cycle_head.py --threads 1       # CPU, stable
    python benchmarks/bench_cycle_head.py --device cuda --channels 2048
    python benchmarks/bench_cycle_head.py --fixed-iters 0   # skip 'fixed'

The CAM is synthetic: ``--positions`` random positions per pair are above
beta1, all others below, so the selected count is controlled.

Benchmarks are not tests: nothing here asserts a time.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from mmcyc.models.heads import CycleConsistencyHead


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pairs', type=int, default=2, help='N pairs')
    parser.add_argument('--size', type=int, default=56,
                        help='feature map side (56 = 448 crop, stride 8)')
    parser.add_argument('--channels', type=int, default=None,
                        help='D; defaults to 2048 on CUDA, 256 on CPU')
    parser.add_argument('--positions', type=int, default=300,
                        help='positions above beta1 per pair')
    parser.add_argument('--beta2', type=float, default=0.0)
    parser.add_argument('--max-selected', type=int, default=None)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--naive-iters', type=int, default=2)
    parser.add_argument('--per-pair-iters', type=int, default=None,
                        help='defaults to --iters')
    parser.add_argument('--fixed-iters', type=int, default=2,
                        help="iterations of the head with selection_buffer="
                        "'fixed' (0 skips it)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads; 1 avoids OpenMP spinning '
                        'on a loaded machine, which slows the naive loop')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    if args.channels is None:
        args.channels = 2048 if args.device.startswith('cuda') else 256
    return args


def naive_cycle_loss(feat_a, feat_b, cam_a, shared, alpha, beta1, beta2,
                     radius, eps=1e-6):
    """The head's L_cyc, one pair and one selected position at a time."""
    num_pairs, channels, height, width = feat_a.shape
    rows = torch.arange(height, device=feat_a.device)[:, None]
    cols = torch.arange(width, device=feat_a.device)[None, :]
    total = feat_a.new_zeros(())
    count = 0
    for n in range(num_pairs):
        flat_a = feat_a[n].reshape(channels, -1)
        flat_b = feat_b[n].reshape(channels, -1)
        score = cam_a[n][shared[n] > 0].amax(dim=0)
        for p in (score.flatten() > beta1).nonzero().flatten().tolist():
            y, x = divmod(p, width)
            wf = flat_a[:, p] @ flat_b  # Eq. 3
            wf = F.softmax(alpha * wf / wf.max().abs().clamp(min=eps), 0)
            vi = flat_b @ wf  # Eq. 5
            wb = vi @ flat_a  # Eq. 6
            log_wb = F.log_softmax(
                alpha * wb / wb.max().abs().clamp(min=eps), 0)  # Eq. 7
            if log_wb[p].exp().item() > beta2:  # DCFS
                dist = (rows - y)**2 + (cols - x)**2  # Eq. 10
                mask = torch.where(dist < radius, radius - dist, 0)  # Eq. 11
                total = total - (mask.flatten() * log_wb).sum()  # Eq. 8
                count += 1
    return total / max(count, 1)


def per_pair_cycle_loss(feat_a, feat_b, cam_a, shared, alpha, beta1, beta2,
                        radius, eps=1e-6):
    """The head's L_cyc, one pair at a time, each pair in matrix products."""
    num_pairs, channels, height, width = feat_a.shape
    rows = torch.arange(height, device=feat_a.device).repeat_interleave(
        width)  # (P, )
    cols = torch.arange(width, device=feat_a.device).repeat(height)  # (P, )
    total = feat_a.new_zeros(())
    count = feat_a.new_zeros(())
    for n in range(num_pairs):
        flat_a = feat_a[n].reshape(channels, -1)  # (D, P)
        flat_b = feat_b[n].reshape(channels, -1)  # (D, P)
        score = cam_a[n][shared[n] > 0].amax(dim=0).flatten()  # (P, )
        pos = (score > beta1).nonzero().flatten()  # (S, )
        wf = flat_a[:, pos].t() @ flat_b  # Eq. 3, (S, P)
        peak = wf.amax(dim=1, keepdim=True).abs().clamp(min=eps)
        wf = F.softmax(alpha * wf / peak, dim=1)  # Eq. 4
        vi = wf @ flat_b.t()  # Eq. 5, (S, D)
        wb = vi @ flat_a  # Eq. 6, (S, P)
        peak = wb.amax(dim=1, keepdim=True).abs().clamp(min=eps)
        log_wb = F.log_softmax(alpha * wb / peak, dim=1)  # Eq. 7
        back = log_wb.gather(1, pos[:, None]).squeeze(1).exp()  # (S, )
        keep = back > beta2  # DCFS
        dist = (rows[None] - (pos // width)[:, None])**2 + (
            cols[None] - (pos % width)[:, None])**2  # Eq. 10, (S, P)
        mask = torch.where(dist < radius, radius - dist, 0)  # Eq. 11
        per_vector = (mask * log_wb).sum(dim=1)  # (S, )
        total = total - torch.where(keep, per_vector, 0).sum()  # Eq. 8
        count = count + keep.sum()
    return total / count.clamp(min=1)


def make_inputs(args):
    gen = torch.Generator().manual_seed(args.seed)
    n, d, s = args.pairs, args.channels, args.size
    feat_a = F.relu(torch.randn(n, d, s, s, generator=gen))
    feat_b = F.relu(torch.randn(n, d, s, s, generator=gen))
    cam_a = torch.rand(n, 2, s, s, generator=gen) * 0.3  # all <= beta1
    for k in range(n):
        chosen = torch.randperm(s * s, generator=gen)[:args.positions]
        cam_a[k, 0].view(-1)[chosen] = 0.31 + 0.69 * torch.rand(
            len(chosen), generator=gen)
    shared = torch.tensor([[1.0, 0.0]]).repeat(n, 1)
    return [t.to(args.device) for t in (feat_a, feat_b, cam_a, shared)]


def timed(fn, iters, device, warmup=True):
    """Mean seconds of ``fn`` (forward + backward), after a warm-up run."""
    if warmup:
        fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(iters):
        out = fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters, out


def main():
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    head = CycleConsistencyHead(
        beta2=args.beta2, max_selected=args.max_selected).to(args.device)
    feat_a, feat_b, cam_a, shared = make_inputs(args)
    feat_a.requires_grad_()
    feat_b.requires_grad_()

    def run_head():
        feat_a.grad = feat_b.grad = None
        losses = head.loss(feat_a, feat_b, cam_a, shared)
        losses['loss_cyc'].backward()
        return {k: v.detach() for k, v in losses.items()}

    def run_naive():
        feat_a.grad = feat_b.grad = None
        loss = naive_cycle_loss(feat_a, feat_b, cam_a, shared, head.alpha,
                                head.beta1, head.beta2, head.radius)
        loss.backward()
        return loss.detach()

    def run_per_pair():
        feat_a.grad = feat_b.grad = None
        loss = per_pair_cycle_loss(feat_a, feat_b, cam_a, shared, head.alpha,
                                   head.beta1, head.beta2, head.radius)
        loss.backward()
        return loss.detach()

    cuda = args.device.startswith('cuda')
    head_s, losses = timed(run_head, args.iters, args.device)
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    per_pair_s, per_pair_loss = timed(
        run_per_pair, args.per_pair_iters or args.iters, args.device)
    fixed = {}
    if args.fixed_iters > 0:
        head.selection_buffer = 'fixed'
        fixed_s, fixed_losses = timed(run_head, args.fixed_iters, args.device)
        head.selection_buffer = 'exact'
        fixed = dict(
            fixed_buffer_s_per_iter=round(fixed_s, 5),
            fixed_buffer_pairs_per_s=round(args.pairs / fixed_s, 2),
            fixed_buffer_cost=round(fixed_s / head_s, 2),
            fixed_buffer_peak_mem_mb=(torch.cuda.max_memory_allocated() /
                                      2**20 if cuda else None),
            loss_fixed_buffer_abs_diff=abs(
                float(fixed_losses['loss_cyc']) -
                float(losses['loss_cyc'])))
    # the naive loop is ~all Python/kernel overhead: warm-up changes nothing
    naive_s, naive_loss = timed(
        run_naive, args.naive_iters, args.device, warmup=False)
    figures = dict(
        device=args.device,
        device_name=(torch.cuda.get_device_name() if args.device.startswith(
            'cuda') else 'cpu'),
        torch_threads=torch.get_num_threads(),
        pairs=args.pairs,
        feature_size=args.size,
        channels=args.channels,
        candidates=int(losses['cyc_num_candidates']),
        selected=int(losses['cyc_num_selected']),
        head_s_per_iter=round(head_s, 5),
        naive_s_per_iter=round(naive_s, 5),
        per_pair_s_per_iter=round(per_pair_s, 5),
        head_pairs_per_s=round(args.pairs / head_s, 2),
        naive_pairs_per_s=round(args.pairs / naive_s, 3),
        per_pair_pairs_per_s=round(args.pairs / per_pair_s, 2),
        speedup=round(naive_s / head_s, 1),
        speedup_vs_per_pair=round(per_pair_s / head_s, 2),
        loss_head=float(losses['loss_cyc']),
        loss_naive=float(naive_loss),
        loss_per_pair=float(per_pair_loss),
        loss_max_abs_diff=abs(float(losses['loss_cyc']) - float(naive_loss)),
        loss_per_pair_abs_diff=abs(
            float(losses['loss_cyc']) - float(per_pair_loss)),
        head_peak_mem_mb=peak_mb,
        **fixed)
    if args.max_selected is not None:
        figures['note'] = ('max_selected subsamples the head only: the '
                           'losses of the references differ by design')
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=2)


if __name__ == '__main__':
    main()
