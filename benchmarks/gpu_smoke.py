# Copyright (c) mmcyc contributors. All rights reserved.
"""GPU smoke test: every stage of the VOC recipe for a few iterations.

Each stage's model is built from the shipped VOC config (random weights:
``init_weights`` is not called, so no checkpoint is read), at full width and
448x448 inputs by default, and run a few iterations on synthetic data:

- ``cam_train``: stage 1, the classifier's ``train_step`` (images/s);
- ``cam_infer``: stage 1b, multi-scale + flip CAMs, each image a new shape;
- ``cyc_train``: stage 2, CyCSNet's ``train_step`` on image pairs with the
  cycle head (pairs/s); ``cyc_train_fixed``: the same with the head's
  ``selection_buffer='fixed'`` (no host sync in the step);
- ``refine``: stage 3, ``CAMRefiner`` with a synthetic feature bank, F run
  on each target (a new shape each);
- ``aff_train``: stage 4, AffinityNet's ``train_step`` on synthetic
  affinity labels;
- ``rw``: stage 4b, AffinityNet's embedding and the random walk per image.

Trainings use the configs' optimiser through mmengine's
``build_optim_wrapper`` (``AmpOptimWrapper``, ``loss_scale='dynamic'``, as
``tools/train.py --amp`` sets, when AMP is on: the default on CUDA);
inference stages run under ``torch.autocast``. ``cudnn.benchmark`` is on
for the trainings (fixed crops) and off for the stages that see a new shape
every image, as the tools set it. Per stage it prints items/s and the peak
memory (``torch.cuda.max_memory_allocated``, reset between stages) and
writes them all to ``--out``.

    python benchmarks/gpu_smoke.py                       # CUDA, 448, width 1
    python benchmarks/gpu_smoke.py --device cpu --size 64 --width 0.125 \\
        --iters 1 --images 1                             # CPU check

Benchmarks are not tests: nothing here asserts a time.
"""
import argparse
import contextlib
import json
import os.path as osp
import time

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = dict(
    cam='configs/cam_resnet38_voc.py',
    cyc='configs/cyc_resnet38_voc.py',
    aff='configs/aff_resnet38_voc.py')
NUM_CLASSES = 20


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    cuda = torch.cuda.is_available()
    parser.add_argument('--device', default='cuda' if cuda else 'cpu')
    parser.add_argument('--size', type=int, default=448,
                        help='crop side (a multiple of 8)')
    parser.add_argument('--width', type=float, default=1.0,
                        help="ResNet-38's widen_factor (1 = the paper's)")
    parser.add_argument('--iters', type=int, default=3,
                        help='timed iterations per stage, after one warm-up')
    parser.add_argument('--batch', type=int, default=None,
                        help='images per training step (pairs for stage 2: '
                        'half); defaults to 8 on CUDA, 2 on CPU')
    parser.add_argument('--images', type=int, default=None,
                        help='images per inference stage; defaults to '
                        '--iters + 1')
    parser.add_argument('--amp', dest='amp', action='store_true',
                        default=None, help='mixed precision (default on '
                        'CUDA)')
    parser.add_argument('--no-amp', dest='amp', action='store_false')
    parser.add_argument('--amp-dtype', default='float16',
                        choices=['float16', 'bfloat16'])
    parser.add_argument('--stages', nargs='*', default=None,
                        help='run only these stages')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads')
    parser.add_argument('--out', help='write the figures here (JSON)')
    args = parser.parse_args()
    args.cuda = args.device.startswith('cuda')
    if args.amp is None:
        args.amp = args.cuda
    if args.amp and not args.cuda:
        parser.error("--amp needs CUDA (mmengine's AmpOptimWrapper)")
    if args.size % 8:
        parser.error(f'--size must be a multiple of 8, got {args.size}')
    if args.batch is None:
        args.batch = 8 if args.cuda else 2
    args.batch = max(2, args.batch - args.batch % 2)
    if args.images is None:
        args.images = args.iters + 1
    return args


def set_width(node, width):
    """Set ``widen_factor`` of every ResNet38 in a (nested) config."""
    if isinstance(node, dict):
        if node.get('type') == 'ResNet38':
            node['widen_factor'] = width
        for value in node.values():
            set_width(value, width)
    elif isinstance(node, (list, tuple)):
        for value in node:
            set_width(value, width)


def load_config(key, args):
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[key]))
    model = cfg.model.to_dict()
    set_width(model, args.width)
    if model.get('data_preprocessor', {}).get('size') is not None:
        model['data_preprocessor']['size'] = (args.size, args.size)
    cfg.model = model
    return cfg


def build(cfg, args, train=True, **overrides):
    """The config's model (random weights) and, to train, its optimiser."""
    model = MODELS.build(dict(cfg.model, **overrides)).to(args.device)
    if not train:
        return model.eval(), None
    optim_cfg = cfg.optim_wrapper.to_dict()
    if args.amp:  # what tools/train.py --amp sets
        optim_cfg.update(type='AmpOptimWrapper', loss_scale='dynamic',
                         dtype=args.amp_dtype)
    return model.train(), build_optim_wrapper(model, optim_cfg)


def autocast(args):
    if not args.amp:
        return contextlib.nullcontext()
    return torch.autocast('cuda', dtype=getattr(torch, args.amp_dtype))


def sync(args):
    if args.cuda:
        torch.cuda.synchronize()


def images(num, size, seed=0):
    """``num`` uint8 BGR images (3, size, size), as the pipeline packs."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, size, size), generator=gen,
                          dtype=torch.uint8) for _ in range(num)]


def multi_hot(indices):
    label = torch.zeros(NUM_CLASSES)
    label[list(indices)] = 1.0
    return label


def sample(size, label):
    s = SegDataSample(metainfo=dict(img_shape=(size, size),
                                    ori_shape=(size, size)))
    s.gt_img_label = label
    return s


def timed(fn, iters, args):
    """Seconds of ``iters`` calls of ``fn`` after one warm-up call, and the
    peak memory (MiB) of the timed calls (None on the CPU)."""
    fn(0)
    sync(args)
    if args.cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for i in range(iters):
        fn(i + 1)
    sync(args)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.cuda else None
    return seconds, peak


def scalar(value):
    return float(value.detach()) if torch.is_tensor(value) else float(value)


def record(name, unit, count, seconds, peak, **extra):
    figures = dict(unit=unit, items=count, seconds=round(seconds, 4),
                   items_per_s=round(count / seconds, 3),
                   peak_mem_mb=None if peak is None else round(peak, 1),
                   **extra)
    peak_text = '-' if peak is None else f'{peak:.0f} MiB'
    print(f'{name:>16}: {figures["items_per_s"]:9.3f} {unit}/s, peak '
          f'{peak_text}  ({count} {unit} in {seconds:.2f} s)', flush=True)
    return figures


# ---------------------------------------------------------------- stages
def cam_train(args):
    torch.backends.cudnn.benchmark = args.cuda
    model, optim = build(load_config('cam', args), args)
    batch = [dict(inputs=images(args.batch, args.size, i),
                  data_samples=[sample(args.size, multi_hot([k % 20]))
                                for k in range(args.batch)])
             for i in range(args.iters + 1)]
    seconds, peak = timed(lambda i: model.train_step(batch[i], optim),
                          args.iters, args)
    return record('cam_train', 'images', args.batch * args.iters, seconds,
                  peak)


def infer_shapes(args):
    """A new (H, W) for every image, on the stride-8 grid."""
    return [(args.size - 8 * (i % 4), args.size - 16 * (i % 3))
            for i in range(args.images + 1)]


def cam_infer(args):
    torch.backends.cudnn.benchmark = False  # as apis.checkpoint_test
    model, _ = build(load_config('cam', args), args, train=False)
    shapes = infer_shapes(args)
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randn(1, 3, *s, generator=gen).to(args.device)
              for s in shapes]

    @torch.no_grad()
    def run(i):
        meta = dict(img_shape=shapes[i], ori_shape=shapes[i])
        s = SegDataSample(metainfo=meta)
        s.gt_img_label = multi_hot([i % 20, 7]).to(args.device)
        with autocast(args):
            model.predict(inputs[i], [s])

    seconds, peak = timed(run, args.images, args)
    return record('cam_infer', 'images', args.images, seconds, peak,
                  scales=list(model.test_cfg['scales']),
                  flip=model.test_cfg['flip'])


def pair_batch(args, seed):
    pairs = args.batch // 2
    samples = []
    for k in range(2 * pairs):
        samples.append(sample(args.size, multi_hot([k % pairs, 19])))
    for k in range(pairs):
        shared = samples[k].gt_img_label * samples[pairs + k].gt_img_label
        samples[k].gt_shared_label = shared
        samples[pairs + k].gt_shared_label = shared.clone()
    return dict(inputs=images(2 * pairs, args.size, seed),
                data_samples=samples)


def cyc_train(args, buffer='exact'):
    torch.backends.cudnn.benchmark = args.cuda
    cfg = load_config('cyc', args)
    head = dict(cfg.model['head'], selection_buffer=buffer)
    model, optim = build(cfg, args, head=head)
    batch = [pair_batch(args, i) for i in range(args.iters + 1)]
    logs = []
    seconds, peak = timed(
        lambda i: logs.append(model.train_step(batch[i], optim)), args.iters,
        args)
    pairs = args.batch // 2
    name = 'cyc_train' if buffer == 'exact' else 'cyc_train_fixed'
    return record(name, 'pairs', pairs * args.iters, seconds, peak,
                  selection_buffer=buffer,
                  selected_per_step=scalar(logs[-1]['cyc_num_candidates']),
                  loss_cyc=scalar(logs[-1]['loss_cyc']))


def synthetic_bank(refiner, channels, args, num_images=64, per_class=32):
    """A feature bank of ``num_images`` images, ``per_class`` fp16 vectors
    per (image, class), two classes each."""
    from mmcyc.models.refiners import FeatureBank
    gen = torch.Generator().manual_seed(2)
    labels = torch.zeros(num_images, NUM_CLASSES, dtype=torch.bool)
    image_index, classes = [], []
    for m in range(num_images):
        for c in (m % NUM_CLASSES, (m + 3) % NUM_CLASSES):
            labels[m, c] = True
            image_index += [m] * per_class
            classes += [c] * per_class
    vectors = F.relu(torch.randn(len(classes), channels,
                                 generator=gen)).half()
    return FeatureBank([f'bank_{m}' for m in range(num_images)], labels,
                       vectors, torch.tensor(image_index),
                       torch.tensor(classes), meta=refiner.bank_meta())


def refine(args):
    torch.backends.cudnn.benchmark = False  # as mmcyc.apis.refine_cams
    cfg = load_config('cyc', args)
    model, _ = build(cfg, args, train=False)
    refiner = MODELS.build(dict(cfg.refiner, num_refs=16))
    with torch.no_grad():
        channels = model.extract_feat(
            torch.zeros(1, 3, 64, 64, device=args.device)).shape[1]
    refiner.set_bank(synthetic_bank(refiner, channels, args))
    shapes = infer_shapes(args)
    gen = torch.Generator().manual_seed(3)
    inputs = [torch.randn(1, 3, *s, generator=gen).to(args.device)
              for s in shapes]
    cams = [torch.rand(NUM_CLASSES, *s, generator=gen) for s in shapes]

    @torch.no_grad()
    def run(i):
        label = multi_hot([i % NUM_CLASSES, (i + 3) % NUM_CLASSES])
        with autocast(args):
            feat = model.extract_feat(inputs[i])[0]  # (D, h, w)
        refiner.refine((cams[i] * label[:, None, None]).to(args.device),
                       feat, label.to(args.device), f'target_{i}')

    seconds, peak = timed(run, args.images, args)
    return record('refine', 'images', args.images, seconds, peak,
                  num_refs=refiner.num_refs,
                  bank_placement=refiner.place_bank(args.device))


def aff_train(args):
    torch.backends.cudnn.benchmark = args.cuda
    model, optim = build(load_config('aff', args), args)
    grid = -(-args.size // 8)
    gen = torch.Generator().manual_seed(4)

    def batch(seed):
        samples = []
        for _ in range(args.batch):
            s = sample(args.size, multi_hot([0]))
            label = torch.randint(0, 3, (1, grid, grid), generator=gen)
            label[:, :, :grid // 4] = 255  # some ignored positions
            s.gt_aff_label = PixelData(data=label)
            samples.append(s)
        return dict(inputs=images(args.batch, args.size, seed),
                    data_samples=samples)

    batches = [batch(i) for i in range(args.iters + 1)]
    seconds, peak = timed(lambda i: model.train_step(batches[i], optim),
                          args.iters, args)
    return record('aff_train', 'images', args.batch * args.iters, seconds,
                  peak)


def rw(args):
    torch.backends.cudnn.benchmark = False  # as apis.checkpoint_test
    model, _ = build(load_config('aff', args), args, train=False)
    shapes = infer_shapes(args)
    gen = torch.Generator().manual_seed(5)
    inputs = [torch.randn(1, 3, *s, generator=gen).to(args.device)
              for s in shapes]
    cams = [torch.rand(NUM_CLASSES, *s, generator=gen) for s in shapes]

    @torch.no_grad()
    def run(i):
        label = multi_hot([i % NUM_CLASSES, 5])
        with autocast(args):
            model.propagate_cam(inputs[i],
                                (cams[i] * label[:, None, None]).to(
                                    args.device))

    seconds, peak = timed(run, args.images, args)
    return record('rw', 'images', args.images, seconds, peak,
                  steps=model.rw.steps)


STAGES = dict(
    cam_train=cam_train,
    cam_infer=cam_infer,
    cyc_train=cyc_train,
    cyc_train_fixed=lambda args: cyc_train(args, 'fixed'),
    refine=refine,
    aff_train=aff_train,
    rw=rw)


def main():
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    init_default_scope('mmseg')
    # quiet: the optimiser constructor logs every parameter
    MMLogger.get_instance('gpu_smoke', log_level='ERROR')
    import mmcyc  # noqa: F401  (registers the models)
    unknown = set(args.stages or ()) - set(STAGES)
    if unknown:
        raise SystemExit(f'unknown stages {sorted(unknown)}; choose from '
                         f'{list(STAGES)}')
    torch.manual_seed(0)
    results = dict(
        device=torch.cuda.get_device_name() if args.cuda else
        f'cpu ({torch.get_num_threads()} threads)',
        torch=torch.__version__, amp=args.amp,
        amp_dtype=args.amp_dtype if args.amp else None, size=args.size,
        width=args.width, iters=args.iters, batch=args.batch, stages={})
    print(f'gpu_smoke on {results["device"]}: {args.size}x{args.size}, '
          f'width {args.width}, AMP {args.amp}', flush=True)
    start = time.perf_counter()
    for name, stage in STAGES.items():
        if args.stages and name not in args.stages:
            continue
        if args.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        results['stages'][name] = stage(args)
    results['total_s'] = round(time.perf_counter() - start, 1)
    print(f'total {results["total_s"]} s', flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
