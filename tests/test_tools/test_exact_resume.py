"""A training killed at a random iteration and resumed ends bit-identical.

Both runs use what makes a resume inexact without ``RNGStateHook``: dropout
(the main process's torch generator) and random flips and crops drawn in two
persistent dataloader workers, whose generators run on from epoch to epoch.
"""
import os
import os.path as osp
import random
import re
import shutil
import signal
import subprocess

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CAM_CONFIG = 'tests/data/cam_tiny_synthvoc.py'
SEG_CONFIG = 'tests/data/seg_tiny_synthvoc.py'
TRAIN_ITER = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]')


def options(root, *extra):
    return ['--cfg-options',
            *(f'{loader}.dataset.data_root={root}' for loader in
              ('train_dataloader', 'val_dataloader', 'test_dataloader')),
            'train_dataloader.num_workers=2',
            'train_dataloader.persistent_workers=True', *extra]


def state_dict(path):
    return torch.load(path, map_location='cpu', weights_only=False)[
        'state_dict']


def assert_identical(path_a, path_b):
    a, b = state_dict(path_a), state_dict(path_b)
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f'{len(differing)} tensors differ: {differing[:3]}'


def train_and_kill(python, args, kill_at):
    """Run tools/train.py; SIGKILL its process group after iteration
    ``kill_at`` (counted over epochs) is logged. Returns the last logged
    (epoch, iteration)."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.Popen(
        [python, 'tools/train.py', *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    seen = None
    try:
        for line in proc.stdout:
            match = TRAIN_ITER.search(line)
            if match:
                epoch, it, per_epoch = map(int, match.groups())
                seen = (epoch, it)
                if (epoch - 1) * per_epoch + it >= kill_at:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, (
        f'the run ended ({proc.returncode}) before iteration {kill_at}')
    return seen


def test_killed_cam_training_resumes_to_identical_weights(
        tiny_synthvoc, tmp_path, python, run_tool):
    # 3 epochs of 6 iterations, a checkpoint after each epoch
    opts = options(tiny_synthvoc, 'train_cfg.max_epochs=3',
                   'param_scheduler.0.end=3')
    full = str(tmp_path / 'full')
    run_tool(python, 'tools/train.py', CAM_CONFIG, '--work-dir', full, *opts)
    # killed at a random iteration of epoch 2 or 3 (after epoch 1's
    # checkpoint), then the same command with --resume
    kill_at = random.Random(2026).randint(8, 17)
    work = str(tmp_path / 'killed')
    epoch, _ = train_and_kill(
        python, [CAM_CONFIG, '--work-dir', work, *opts], kill_at)
    assert not osp.exists(osp.join(work, 'epoch_3.pth'))
    proc = run_tool(python, 'tools/train.py', CAM_CONFIG, '--work-dir', work,
                    '--resume', *opts)
    assert f'resumed epoch: {epoch - 1}' in proc.stdout + proc.stderr
    assert_identical(osp.join(full, 'epoch_3.pth'),
                     osp.join(work, 'epoch_3.pth'))


def test_iteration_based_training_resumes_to_identical_weights(
        tiny_synthvoc, tmp_path, python, run_tool):
    # stage 5's loop: 8 iterations, a checkpoint every 2, all kept (the
    # config keeps only the last); the FCN head's dropout draws from the
    # main process
    masks = osp.join(tiny_synthvoc, 'SegmentationClassAug')
    opts = options(
        tiny_synthvoc,
        f'train_dataloader.dataset.data_prefix.seg_map_path={masks}',
        'train_cfg.max_iters=8', 'train_cfg.val_interval=8',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'param_scheduler.0.end=8')
    full = str(tmp_path / 'full')
    run_tool(python, 'tools/train.py', SEG_CONFIG, '--work-dir', full, *opts)
    work = str(tmp_path / 'crashed')
    os.makedirs(work)
    shutil.copy(osp.join(full, 'iter_4.pth'), work)
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'iter_4.pth'))
    run_tool(python, 'tools/train.py', SEG_CONFIG, '--work-dir', work,
             '--resume', *opts)
    assert_identical(osp.join(full, 'iter_8.pth'),
                     osp.join(work, 'iter_8.pth'))
