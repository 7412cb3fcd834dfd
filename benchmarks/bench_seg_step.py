# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 5 throughput: one training step of the embedded default's FCN.

``configs/fcn_r18-d8_synthvoc-pseudo.py`` as configured (its heads are
:class:`~mmcyc.models.FastAccuracyFCNHead`) is compared, in the same run,
on the same batches and from the same weights, with the model a user would
otherwise build: the same config with mmseg's stock ``FCNHead`` for its
heads (decode, and auxiliary if any), whose logged ``acc_seg`` takes a
``topk``.
Both models take the same number of steps, alternating in rounds; the
final weights of the two are compared too (they must be equal: only the
logged accuracy is computed differently). A third model, the configured
head with ``upsample_by_matmul=True`` (the loss's upsampling as two matrix
products, :func:`mmcyc.models.utils.bilinear_resize`), is timed in the
same rounds. Its losses and gradients differ from the stock head's at
float-rounding level in each step; training amplifies that, and the
largest weight difference at the end is reported.

    python benchmarks/bench_seg_step.py                  # CPU, 1 thread
    python benchmarks/bench_seg_step.py --device cuda --threads 0

Benchmarks are not tests: nothing here asserts a time.
"""
import argparse
import copy
import json
import os.path as osp
import time

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

import mmcyc  # noqa: F401  (registers the head)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'fcn_r18-d8_synthvoc-pseudo.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--iters', type=int, default=20,
                        help='timed steps per model and round')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (0: leave as is); 1 is how '
                        'the main job runs its two stage-5 trainings')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the figures here')
    return parser.parse_args()


def make_batch(cfg, generator):
    """A training batch shaped like the config's: uint8 images, label ids."""
    from mmseg.structures import SegDataSample
    batch = cfg.train_dataloader.batch_size
    height, width = cfg.crop_size
    num_classes = cfg.model.decode_head.num_classes
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(
            torch.randint(0, 256, (3, height, width), generator=generator,
                          dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, height, width),
                              generator=generator)
        label[:, :height // 8] = 255  # some ignored pixels
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(height, width),
                                 pad_shape=(height, width),
                                 ori_shape=(height, width)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def build(cfg, head_type, device, state_dict=None, **head_options):
    from mmseg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    heads = [model_cfg.decode_head]
    if model_cfg.get('auxiliary_head'):
        heads.append(model_cfg.auxiliary_head)
    for head in heads:
        head.type = head_type
        head.pop('upsample_by_matmul', None)
        head.update(head_options)
    model = MODELS.build(model_cfg).to(device)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    model.train()
    return model, build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    init_default_scope('mmseg')
    torch.manual_seed(args.seed)
    configured = cfg.model.decode_head.type
    model, optim = build(cfg, configured, args.device)
    stock, stock_optim = build(cfg, 'FCNHead', args.device,
                               model.state_dict())
    matmul_head = 'FastAccuracyFCNHead'  # the head with the option
    matmul, matmul_optim = build(cfg, matmul_head, args.device,
                                 model.state_dict(), upsample_by_matmul=True)
    matmul_name = f'{matmul_head}(upsample_by_matmul=True)'
    generator = torch.Generator().manual_seed(args.seed)
    batches = [make_batch(cfg, generator) for _ in range(4)]

    def steps(net, optim_wrapper, count, start):
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        begin = time.perf_counter()
        for i in range(count):
            batch = copy.deepcopy(batches[(start + i) % len(batches)])
            torch.manual_seed(args.seed + start + i)  # same dropout masks
            net.train_step(batch, optim_wrapper)
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        return time.perf_counter() - begin

    steps(model, optim, args.warmup, 0)
    steps(stock, stock_optim, args.warmup, 0)
    steps(matmul, matmul_optim, args.warmup, 0)
    seconds = {configured: 0.0, 'FCNHead': 0.0, matmul_name: 0.0}
    done = args.warmup
    for _ in range(args.rounds):
        seconds[configured] += steps(model, optim, args.iters, done)
        seconds['FCNHead'] += steps(stock, stock_optim, args.iters, done)
        seconds[matmul_name] += steps(matmul, matmul_optim, args.iters,
                                      done)
        done += args.iters
    timed = args.iters * args.rounds
    stock_state = stock.state_dict()

    def weight_diff(net):
        return max((value.float() - stock_state[key].float()).abs().max()
                   .item() for key, value in net.state_dict().items())

    max_diff = weight_diff(model)
    figures = dict(
        config=osp.relpath(args.config, ROOT),
        device=args.device,
        threads=torch.get_num_threads(),
        batch=cfg.train_dataloader.batch_size,
        steps_timed=timed,
        ms_per_step={k: round(v / timed * 1000, 1)
                     for k, v in seconds.items()},
        images_per_s={
            k: round(timed * cfg.train_dataloader.batch_size / v, 1)
            for k, v in seconds.items()
        },
        speedup=round(seconds['FCNHead'] / seconds[configured], 2),
        max_abs_weight_diff=max_diff,
        speedup_matmul=round(seconds['FCNHead'] / seconds[matmul_name], 2),
        max_abs_weight_diff_matmul=weight_diff(matmul))
    for head, ms in figures['ms_per_step'].items():
        print(f'{head}: {ms} ms/step, '
              f'{figures["images_per_s"][head]} img/s')
    print(f'speed-up {figures["speedup"]}x; weights after '
          f'{args.warmup + timed} steps differ by at most {max_diff:.3g}')
    print(f'with upsample_by_matmul: speed-up '
          f'{figures["speedup_matmul"]}x, weights differ by at most '
          f'{figures["max_abs_weight_diff_matmul"]:.3g}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=2)


if __name__ == '__main__':
    main()
