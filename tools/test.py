# Copyright (c) mmcyc contributors. All rights reserved.
"""Test (e.g. infer and score CAMs) with a config and a checkpoint."""
import argparse
import copy
import io
import json
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import get_rank
from mmengine.runner import Runner

from mmcyc.engine import (register_trusted_checkpoint_loader,
                          setup_cpu_distributed, teardown_distributed)
from mmcyc.utils import atomic_open
from mmcyc.utils.child_process import stop_with_launcher
from mmcyc.utils.manifest import (bytes_digest, digest, finish_output_dir,
                                  folder_key, guard_output_dir)
from mmcyc.utils.state_dict_check import check_state_dict, unwrap_state_dict


def parse_args():
    parser = argparse.ArgumentParser(description='Test a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--cam-dir',
        help='write one CAM file per image there (CAMWriterHook; '
        'resumable: images whose CAM exists are read back by a '
        'LoadCAMFromFile added to the test pipeline)')
    parser.add_argument(
        '--split',
        help='ann file of the test dataset relative to data_root, e.g. '
        'ImageSets/Segmentation/train.txt')
    parser.add_argument(
        '--pseudo-mask-dir',
        help='write every prediction as a VOC palette PNG there '
        '(PseudoMaskWriterHook), e.g. the random-walk pseudo masks; with a '
        'LoadPseudoMask in the test pipeline (AffinityNet\'s configs), '
        'images whose PNG exists are read back (resumable)')
    parser.add_argument(
        '--input-cam-dir',
        help='the CAM folder the test pipeline reads (sets cam_dir of its '
        'LoadCAMFromFile, e.g. the CAMs AffinityNet walks)')
    parser.add_argument(
        '--metrics-json', help='also write the metrics to this JSON file')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='empty --cam-dir / --pseudo-mask-dir first when they hold files '
        'made by another checkpoint, config or data (without it that is an '
        'error: the files would be read back as if made now)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_checked(runner: Runner, checkpoint: str, blob: bytes) -> None:
    """Load weights, failing on keys or shapes that do not match the model.

    mmengine loads with ``strict=False`` and only logs mismatches (a tensor
    of another shape is skipped, leaving the random initialisation); testing
    a checkpoint of another model must fail instead. The file is read once,
    checked, and its state dict loaded strictly.
    """
    loaded = torch.load(io.BytesIO(blob), map_location='cpu',
                        weights_only=False)
    model = getattr(runner.model, 'module', runner.model)
    state_dict = unwrap_state_dict(loaded, checkpoint)
    check_state_dict(model, state_dict, f'checkpoint {checkpoint}',
                     f'{type(model).__name__} of config {runner.cfg.filename}')
    # as Runner.load_checkpoint: hooks see the checkpoint, then the weights
    runner.call_hook('after_load_checkpoint', checkpoint=loaded)
    model.load_state_dict(state_dict, strict=False)
    runner.logger.info(f'Load checkpoint from {checkpoint}')


def output_parts(cfg: Config, checkpoint_digest: str) -> dict:
    """What the per-image outputs of this test run are made from.

    The checkpoint's bytes, the model config (less where it writes), the
    test pipeline (less the folders it reads) and data root, and the
    manifest key of the CAM folder the test pipeline reads
    (``LoadCAMFromFile``, e.g. the CAMs AffinityNet walks).
    """
    model_cfg = copy.deepcopy(cfg.model.to_dict())
    test_cfg = dict(model_cfg.pop('test_cfg', None) or {})
    test_cfg.pop('out_dir', None)
    dataset = cfg.test_dataloader.dataset
    pipeline = copy.deepcopy([dict(step) for step in
                              dataset.get('pipeline') or ()])
    cams_read = []
    pipeline = [step for step in pipeline  # not the outputs read back
                if step.get('key') != 'written_cam']
    for step in pipeline:
        if step.get('type') == 'LoadCAMFromFile':
            cam_dir = step.pop('cam_dir')
            cams_read.append(folder_key(cam_dir) or osp.abspath(cam_dir))
        elif step.get('type') == 'LoadPseudoMask':
            step.pop('mask_dir', None)  # the output folder itself
    return dict(
        checkpoint=checkpoint_digest,
        model=digest(model_cfg),
        test_cfg=test_cfg,
        test_pipeline=digest(pipeline),
        data_root=dataset.get('data_root'),
        cams_read=cams_read[0] if len(cams_read) == 1 else
        (cams_read or None))


def guard_outputs(cfg: Config, args, checkpoint_digest: str) -> list:
    """Check (and claim) the output folders before anything is written.

    Rank 0 only; returns ``[(folder, key, parts), ...]`` to mark done.
    """
    folders = [(args.cam_dir, 'CAMs'), (args.pseudo_mask_dir, 'pseudo masks')]
    folders = [(f, what) for f, what in folders if f is not None]
    if not folders or int(os.environ.get('RANK', 0)) != 0:
        return []
    if args.overwrite and int(os.environ.get('WORLD_SIZE', 1)) > 1:
        raise SystemExit('--overwrite empties the output folders: run it '
                         'with one process, or delete them first')
    parts = output_parts(cfg, checkpoint_digest)
    return [(folder,
             guard_output_dir(folder, parts, what, overwrite=args.overwrite),
             parts) for folder, what in folders]


def add_cam_writing(cfg: Config, cam_dir: str) -> None:
    """Write the CAMs to ``cam_dir`` and read back the ones there.

    ``CAMWriterHook`` writes each CAM the model computes; a
    ``LoadCAMFromFile(key='written_cam', skip_missing=True)`` right after
    the image is loaded brings the ones already written back with their
    samples, which the model returns instead of computing them again.
    """
    pipeline = cfg.test_dataloader.dataset.pipeline
    num_classes = cfg.model.get('num_classes', 20)
    pipeline.insert(1, dict(type='LoadCAMFromFile', cam_dir=cam_dir,
                            num_classes=num_classes, skip_missing=True,
                            key='written_cam'))
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='CAMWriterHook', out_dir=cam_dir, loops=('test', ))
    ]


def drop_ema_hooks(cfg: Config) -> None:
    """Remove ``EMAHook`` from a config's custom hooks before testing.

    A checkpoint saved under ``EMAHook`` already holds the averaged weights
    in its ``state_dict`` (the hook swaps them in before saving), which is
    what is tested here; the hook itself would need the training run's
    ``before_run`` to exist.
    """
    hooks = cfg.get('custom_hooks', None) or []
    cfg.custom_hooks = [h for h in hooks if h.get('type') != 'EMAHook']


def main():
    args = parse_args()
    register_trusted_checkpoint_loader()
    # a torchrun worker stops when its launcher is killed (even by SIGKILL)
    stop_with_launcher()

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.cam_dir is not None:
        add_cam_writing(cfg, args.cam_dir)
    if args.split is not None:
        cfg.test_dataloader.dataset.ann_file = args.split
    if args.input_cam_dir is not None:
        steps = [step for step in cfg.test_dataloader.dataset.get(
            'pipeline') or () if step.get('type') == 'LoadCAMFromFile']
        if not steps:
            raise SystemExit(f'--input-cam-dir: the test pipeline of '
                             f'{args.config} has no LoadCAMFromFile')
        for step in steps:
            step['cam_dir'] = args.input_cam_dir
    if args.pseudo_mask_dir is not None:
        # masks already written are read back (resumable) where the test
        # pipeline can (LoadPseudoMask: AffinityNet's walk)
        for step in cfg.test_dataloader.dataset.get('pipeline') or ():
            if step.get('type') == 'LoadPseudoMask':
                step['mask_dir'] = args.pseudo_mask_dir
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='PseudoMaskWriterHook', out_dir=args.pseudo_mask_dir,
                 loops=('test', ))
        ]
    cfg.load_from = None  # loaded below, checked against the model
    drop_ema_hooks(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    # every test image has its own shape (multi-scale CAM inference, the
    # random walk, whole-image segmentation): with cudnn.benchmark each new
    # shape is autotuned afresh, slower than the default algorithms.
    # Trainings on fixed crops keep default_runtime's cudnn_benchmark=True
    cfg.env_cfg = dict(cfg.get('env_cfg') or {}, cudnn_benchmark=False)
    torch.backends.cudnn.benchmark = False

    # the checkpoint is read once: its digest names the outputs, its
    # tensors are loaded
    with open(args.checkpoint, 'rb') as f:
        blob = f.read()
    guarded = guard_outputs(cfg, args, bytes_digest(blob))
    runner = Runner.from_cfg(cfg)
    load_checked(runner, args.checkpoint, blob)
    del blob
    metrics = runner.test()
    for folder, key, parts in guarded:
        finish_output_dir(folder, key, parts)
    if args.metrics_json and get_rank() == 0:
        with atomic_open(args.metrics_json, 'w') as f:
            json.dump({k: float(v) if not isinstance(v, str) else v
                       for k, v in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
    teardown_distributed()
