"""tools/analysis_tools/ablate_dcfs.py (Table 5, Fig. 4) end to end on the
tiny synthetic dataset, and its setting-name parser.

The stage-1 classifier is an untrained tiny model (stage 2 trains from it at
lr 1e-4: at the config's 0.01 its features overflow fp16 within an epoch)
and the stage-1 CAMs are made from the masks: the plumbing (overrides per
setting, training, refinement, scoring, scalars, resumption, drawing) does
not depend on their quality. Two settings, one seed and one stage-2 epoch
keep it short.
"""
import json
import os
import shutil
import os.path as osp
import subprocess

import pytest
import torch
from mmengine.config import Config

from mmcyc.datasets.voc_image_label import read_image_names
from mmcyc.utils.config_options import parse_cfg_options
from mmcyc.visualization import read_scalars

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'tests/data/cyc_tiny_synthvoc.py'
TOOL = 'tools/analysis_tools/ablate_dcfs.py'
SPLITS = 'ImageSets/Segmentation'


@pytest.fixture(scope='module')
def tool():
    from mmcyc.apis import dcfs_ablation
    return dcfs_ablation


def test_parse_setting(tool):
    assert tool.parse_setting('fixed0.02') == dict(
        mode='fixed', init_value=0.02, dcfs_statistic='candidates')
    assert tool.parse_setting('fixed0') == dict(
        mode='fixed', init_value=0.0, dcfs_statistic='candidates')
    assert tool.parse_setting('fixed1')['init_value'] == 1.0
    assert tool.parse_setting('dynamic') == dict(
        mode='dynamic', init_value=0.0, dcfs_statistic='candidates')
    assert tool.parse_setting('momentum') == dict(
        mode='momentum', init_value=0.0, dcfs_statistic='candidates')
    assert tool.parse_setting('momentum_selected') == dict(
        mode='momentum', init_value=0.0, dcfs_statistic='selected')
    for bad in ('fixed', 'fixedx', 'fixed1.5', 'fixed-0.1', 'fixednan',
                'momentum2', 'Fixed0.1', 'static', ''):
        with pytest.raises(ValueError) as info:
            tool.parse_setting(bad)
        message = str(info.value)
        assert repr(bad) in message
        for form in ('fixed<v>', 'dynamic', 'momentum', 'momentum_selected'):
            assert form in message


def test_setting_options_merge(tool):
    """The list-index keys go through DictAction + merge_from_dict."""
    cfg = Config.fromfile(CONFIG)
    index = tool.dcfs_hook_index(cfg)
    options = tool.setting_options(tool.parse_setting('fixed0.005'), index)
    cfg.merge_from_dict(parse_cfg_options(options))
    hook = cfg.custom_hooks[index]
    assert hook.type == 'DCFSHook' and hook.mode == 'fixed'
    assert hook.init_value == 0.005 and hook.kappa == 0.95
    assert cfg.model.head.dcfs_statistic == 'candidates'


@pytest.fixture(scope='module')
def stage1(tiny_stage_inputs):
    """An untrained tiny classifier checkpoint and mask CAMs of train_aug.

    Its CAMs (normalised by their maximum) give stage 2 beta1 candidates
    from the first iteration, so beta2 moves; a 2-epoch trained tiny
    classifier has none (all its CAMs are 0 after the ReLU).
    """
    return tiny_stage_inputs['cls'], tiny_stage_inputs['cam_dir']


@pytest.fixture(scope='module')
def ablation(tmp_path_factory, stage1, tiny_synthvoc, run_tool, python):
    checkpoint, cam_dir = stage1
    out = tmp_path_factory.mktemp('ablate_dcfs') / 'out'
    args = [
        python, TOOL, CONFIG, '--cam-checkpoint', checkpoint, '--cam-dir',
        cam_dir, '--out-dir',
        str(out), '--settings', 'fixed0', 'momentum', '--seeds', '0',
        '--num-refs', '4', '--data-root', tiny_synthvoc, '--workers', '0',
        '--cfg-options', 'train_cfg.max_epochs=1',
        'optim_wrapper.optimizer.lr=0.0001'
    ]
    proc = run_tool(*args)
    return out, args, proc


def test_table_and_runs(ablation, tiny_synthvoc):
    out, _, proc = ablation
    log = proc.stdout + proc.stderr
    assert 'tools/train.py' in log and 'tools/refine_cam.py' in log
    table = (out / 'table5.md').read_text()
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    assert rows[0].startswith('| setting |')
    assert [r.split(' | ')[0] for r in rows[1:]] == ['| fixed0',
                                                      '| momentum']
    with open(out / 'table5.json') as f:
        result = json.load(f)
    assert result['std'].startswith('sample standard deviation')
    assert [s['setting'] for s in result['settings']] == ['fixed0',
                                                         'momentum']
    targets = read_image_names(osp.join(tiny_synthvoc, SPLITS, 'train.txt'))
    for row in result['settings']:
        (run, ) = row['runs']
        work = out / row['setting'] / 'seed0'
        # train_cfg.max_epochs=1 reached both the training and the skip
        # check's name of the final checkpoint
        assert run['checkpoint'] == str(work / 'epoch_1.pth')
        assert (work / 'epoch_1.pth').is_file()
        ckpt = torch.load(work / 'epoch_1.pth', map_location='cpu',
                          weights_only=False)
        assert ckpt['dcfs']['mode'] == row['mode']
        # the per-run refinement and its metrics
        with open(work / 'refine_metrics.json') as f:
            metrics = json.load(f)
        assert metrics['num_refs'] == 4
        assert metrics['num_targets'] == len(targets)
        assert run['mIoU'] == metrics['mIoU']
        assert row['mIoU_mean'] == metrics['mIoU'] and row['mIoU_std'] is None
        assert run['mIoU_unrefined'] == metrics['mIoU_unrefined']
        assert (work / 'refined' / 'feature_bank.pth').is_file()
        assert len(list((work / 'refined').glob('*.npz'))) == len(targets)
        # final beta2 and |V^sel| are the last logged values
        (scalars, ) = work.glob('*/vis_data/scalars.json')
        series = read_scalars(str(scalars), ('beta2', 'cyc_num_selected'))
        assert run['beta2_final'] == series['beta2'][1][-1]
        assert run['num_selected_final'] == \
            series['cyc_num_selected'][1][-1]
        assert f'{metrics["mIoU"]:.2f}' in table
    fixed, momentum = result['settings']
    beta2 = read_scalars(
        str(next((out / 'fixed0' / 'seed0').glob('*/vis_data/scalars.json'))),
        ('beta2', ))['beta2'][1]
    assert beta2 and all(b == 0 for b in beta2)
    assert fixed['runs'][0]['beta2_final'] == 0
    assert fixed['rule'] == 'fixed beta2 = 0'
    assert momentum['runs'][0]['beta2_final'] > 0
    assert momentum['rule'].startswith('Eq. 9 (kappa 0.95)')
    assert (out / 'fig4' / 'vis_data' / 'vis_image' /
            'fig4_beta2_0.png').is_file()
    assert result['fig4'].endswith('fig4_beta2_0.png')
    assert (out / 'ablate_dcfs.log').is_file()


def test_rerun_skips_training(ablation, run_tool):
    out, args, _ = ablation
    with open(out / 'table5.json') as f:
        first = json.load(f)
    proc = run_tool(*args)
    log = proc.stdout + proc.stderr
    assert 'tools/train.py' not in log
    assert 'tools/refine_cam.py' not in log
    assert log.count('training skipped') == 2
    with open(out / 'table5.json') as f:
        assert json.load(f) == first


def test_changed_input_remakes_the_run(ablation, run_tool, tmp_path):
    """Another N: each run's refinement is made afresh, named by its
    manifest. Its training is kept where the training's own manifest says
    it had the same inputs (fixed0), and made afresh where there is none
    (momentum's, removed here: a run of an older mmcyc)."""
    out, args, _ = ablation
    at = args.index('--num-refs')
    other = args[:at + 1] + ['3'] + args[at + 2:]
    out_index = other.index('--out-dir') + 1
    copy = tmp_path / 'copy'
    shutil.copytree(out, copy)
    other[out_index] = str(copy)
    kept = copy / 'fixed0' / 'seed0'
    before = (kept / 'epoch_1.pth').read_bytes()
    (kept / 'refined' / 'stale.npz').write_bytes(b'from N = 4')
    os.remove(copy / 'momentum' / 'seed0' / 'mmcyc_train.json')
    proc = run_tool(*other)
    log = proc.stdout + proc.stderr
    changed = {
        line.split(' - ')[-1].split(':')[0]: line
        for line in log.splitlines()
        if 'made by other inputs (num_refs differ' in line
    }
    assert sorted(changed) == ['fixed0/seed0', 'momentum/seed0']
    assert 'its training is kept' in changed['fixed0/seed0']
    assert changed['momentum/seed0'].endswith(
        f"{copy / 'momentum' / 'seed0'} is made afresh")
    assert log.count('tools/train.py') == 1  # momentum's
    assert log.count('tools/refine_cam.py') == 2
    assert (kept / 'epoch_1.pth').read_bytes() == before
    assert not (kept / 'refined' / 'stale.npz').exists()
    for setting in ('fixed0', 'momentum'):
        with open(copy / setting / 'seed0' / 'refine_metrics.json') as f:
            assert json.load(f)['num_refs'] == 3
        with open(copy / setting / 'seed0' / 'mmcyc_run.json') as f:
            assert json.load(f)['parts']['num_refs'] == 3
        assert (copy / setting / 'seed0' / 'mmcyc_train.json').is_file()


def test_missing_classifier_checkpoint_is_named(stage1, tmp_path, python):
    _, cam_dir = stage1
    missing = str(tmp_path / 'missing.pth')
    proc = subprocess.run(
        [python, TOOL, CONFIG, '--cam-checkpoint', missing, '--cam-dir',
         cam_dir, '--out-dir', str(tmp_path / 'out'), '--settings',
         'fixed0.01', '--seeds', '3'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode != 0
    assert f'--cam-checkpoint {missing}: no such file' in proc.stderr


def test_failing_run_is_named(stage1, tmp_path, python):
    """A failing subprocess stops the tool with the run's name."""
    checkpoint, cam_dir = stage1
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    proc = subprocess.run(
        [python, TOOL, CONFIG, '--cam-checkpoint',
         str(corrupt), '--cam-dir', cam_dir, '--out-dir',
         str(tmp_path / 'out'), '--settings', 'fixed0.01', '--seeds', '3'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode != 0
    assert 'DCFS ablation run fixed0.01/seed3: tools/train.py failed' in \
        proc.stderr
