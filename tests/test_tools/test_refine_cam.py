"""tools/refine_cam.py (stage 3) end to end on the tiny synthetic dataset.

The CyCSNet checkpoint is an untrained tiny model and the stage-1 CAMs are
made from the masks: the tool's plumbing (bank, refinement, resumption,
scoring) does not depend on either being trained.
"""
import json
import os
import os.path as osp

import numpy as np
import pytest

from mmcyc.datasets.voc_image_label import read_image_names
from mmcyc.utils import load_cam

CONFIG = 'tests/data/cyc_tiny_synthvoc.py'
SPLITS = 'ImageSets/Segmentation'


@pytest.fixture(scope='module')
def stage_inputs(tiny_stage_inputs):
    """A tiny CyCSNet checkpoint and stage-1 CAMs of every train_aug image."""
    inputs = tiny_stage_inputs
    return inputs['work'], inputs['cyc'], inputs['cam_dir']


def refine(run_tool, python, root, checkpoint, cam_dir, out, *extra):
    return run_tool(
        python, 'tools/refine_cam.py', CONFIG, checkpoint, '--cam-dir',
        cam_dir, '--out-dir', out, '--metrics-json', out + '/metrics.json',
        '--workers', '0', *extra, '--cfg-options',
        f'train_dataloader.dataset.dataset.data_root={root}')


@pytest.fixture(scope='module')
def refined(stage_inputs, tiny_synthvoc, run_tool, python):
    work, checkpoint, cam_dir = stage_inputs
    out = str(work / 'refined')
    proc = refine(run_tool, python, tiny_synthvoc, checkpoint, cam_dir, out)
    return out, proc


def test_refined_cams_and_metrics(refined, stage_inputs, tiny_synthvoc):
    out, proc = refined
    _, _, cam_dir = stage_inputs
    targets = read_image_names(osp.join(tiny_synthvoc, SPLITS, 'train.txt'))
    assert sorted(f for f in os.listdir(out) if f.endswith('.npz')) == \
        sorted(f'{t}.npz' for t in targets)
    changed = 0
    for name in targets:
        cams, labels = load_cam(osp.join(out, f'{name}.npz'))
        before, before_labels = load_cam(osp.join(cam_dir, f'{name}.npz'))
        assert np.array_equal(labels, before_labels)
        assert cams.shape == before.shape == (len(labels), 64, 64)
        assert (cams >= before).all()  # Eq. 14 never lowers a CAM
        changed += int(not np.array_equal(cams, before))
    assert changed > 0
    assert osp.isfile(osp.join(out, 'feature_bank.pth'))
    with open(osp.join(out, 'metrics.json')) as f:
        metrics = json.load(f)
    assert 0 <= metrics['mIoU'] <= 100
    assert 0 <= metrics['mIoU_unrefined'] <= 100
    assert metrics['num_targets'] == len(targets) and metrics['num_refs'] == 16
    log = proc.stdout + proc.stderr
    assert f'refining {len(targets)} targets' in log
    assert '24 bank images' in log


def test_rerun_skips_done_targets(refined, stage_inputs, tiny_synthvoc,
                                  run_tool, python):
    out, _ = refined
    _, checkpoint, cam_dir = stage_inputs
    with open(osp.join(out, 'metrics.json')) as f:
        first = json.load(f)
    stamps = {f: os.stat(osp.join(out, f)).st_mtime_ns
              for f in os.listdir(out) if f.endswith(('.npz', '.pth'))}
    proc = refine(run_tool, python, tiny_synthvoc, checkpoint, cam_dir, out)
    assert 'refining 0 targets (8 of this rank done before)' in \
        proc.stdout + proc.stderr
    assert stamps == {f: os.stat(osp.join(out, f)).st_mtime_ns
                      for f in stamps}
    with open(osp.join(out, 'metrics.json')) as f:
        assert json.load(f) == first


def test_zero_refs_leaves_cams_unchanged(stage_inputs, tiny_synthvoc, run_tool,
                                         python):
    work, checkpoint, cam_dir = stage_inputs
    out = str(work / 'identity')
    refine(run_tool, python, tiny_synthvoc, checkpoint, cam_dir, out,
           '--num-refs', '0')
    with open(osp.join(out, 'metrics.json')) as f:
        metrics = json.load(f)
    assert metrics['mIoU'] == metrics['mIoU_unrefined']
    for name in os.listdir(out):
        if name.endswith('.npz'):
            assert np.array_equal(
                load_cam(osp.join(out, name))[0],
                load_cam(osp.join(cam_dir, name))[0])


def test_two_rank_run_matches_single_process(refined, stage_inputs,
                                             tiny_synthvoc, run_tool, python,
                                             free_port):
    """tools/dist_refine_cam.sh on 2 CPU ranks (gloo): the bank built in
    shares and the targets split across ranks give the single-process CAMs
    and metrics."""
    out, _ = refined
    work, checkpoint, cam_dir = stage_inputs
    dist_out = str(work / 'refined_2ranks')
    proc = run_tool(
        'bash', 'tools/dist_refine_cam.sh', CONFIG, checkpoint, '2',
        '--cam-dir', cam_dir, '--out-dir', dist_out, '--metrics-json',
        dist_out + '/metrics.json', '--workers', '0', '--cfg-options',
        f'train_dataloader.dataset.dataset.data_root={tiny_synthvoc}',
        env=dict(os.environ, PYTHON=python, PORT=free_port))
    log = proc.stdout + proc.stderr
    assert 'refining 4 targets' in log  # 8 targets, 4 a rank
    names = sorted(f for f in os.listdir(out) if f.endswith('.npz'))
    assert sorted(f for f in os.listdir(dist_out)
                  if f.endswith('.npz')) == names
    for name in names:
        np.testing.assert_allclose(
            load_cam(osp.join(dist_out, name))[0],
            load_cam(osp.join(out, name))[0], atol=1e-3)
    with open(osp.join(out, 'metrics.json')) as f:
        single = json.load(f)
    with open(osp.join(dist_out, 'metrics.json')) as f:
        assert json.load(f)['mIoU'] == pytest.approx(single['mIoU'], abs=0.01)


def test_bank_cache_is_keyed_by_content_not_path(refined, stage_inputs,
                                                  tiny_synthvoc, run_tool,
                                                  python, tmp_path):
    """The cached bank records its checkpoint and CAM folder by digest: a
    copy of the same checkpoint elsewhere reuses it, a bank made from other
    weights (the classifier's F) is refused with the differing entries."""
    import shutil
    import subprocess

    out, _ = refined
    _, checkpoint, cam_dir = stage_inputs
    bank = osp.join(out, 'feature_bank.pth')
    stamp = os.stat(bank).st_mtime_ns
    copy = str(tmp_path / 'moved' / 'cyc_copy.pth')
    os.makedirs(osp.dirname(copy))
    shutil.copy(checkpoint, copy)
    refine(run_tool, python, tiny_synthvoc, copy, cam_dir,
           str(tmp_path / 'copy_out'), '--bank-file', bank)
    assert os.stat(bank).st_mtime_ns == stamp  # read back, not rebuilt
    cls = osp.join(osp.dirname(checkpoint), 'cls.pth')
    out_cls = str(tmp_path / 'cls_out')
    proc = subprocess.run(
        [python, 'tools/refine_cam.py', CONFIG, '-', '--init-from-classifier',
         cls, '--cam-dir', cam_dir, '--out-dir', out_cls, '--bank-file',
         bank, '--workers', '0', '--cfg-options',
         f'train_dataloader.dataset.dataset.data_root={tiny_synthvoc}'],
        env=dict(os.environ, PYTHONPATH=os.getcwd(), OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f'cached feature bank {bank} does not match' in log
    assert 'checkpoint' in log and 'features' in log
