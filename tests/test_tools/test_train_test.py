"""The command-line tools end to end on a tiny synthetic dataset."""
import json
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config

# tests/ema_checks.py
from ema_checks import assert_batchnorm_statistics_averaged

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'tests/data/cam_tiny_synthvoc.py'


def data_options(root):
    return [f'{loader}.dataset.data_root={root}' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_synthvoc, run_tool, python):
    """Two epochs of training through tools/train.py (6 iterations each)."""
    work = str(tmp_path_factory.mktemp('train_full'))
    run_tool(python, 'tools/train.py', CONFIG, '--work-dir', work,
              '--cfg-options', *data_options(tiny_synthvoc))
    return work


def test_resume_continues_iteration_and_optimizer(trained, tiny_synthvoc,
                                                  tmp_path, python, run_tool):
    full_1, full_2 = (load(osp.join(trained, f'epoch_{e}.pth')) for e in (1, 2))
    # simulate a crash after epoch 1: only its checkpoint survives
    work = str(tmp_path / 'crashed')
    shutil.copytree(trained, work, ignore=shutil.ignore_patterns('epoch_2.pth'))
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'epoch_1.pth'))
    proc = run_tool(python, 'tools/train.py', CONFIG, '--work-dir', work,
                    '--resume', '--cfg-options', *data_options(tiny_synthvoc))
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    resumed = load(osp.join(work, 'epoch_2.pth'))
    assert resumed['meta']['iter'] == full_2['meta']['iter'] == \
        2 * full_1['meta']['iter']
    assert resumed['meta']['epoch'] == 2
    # the optimizer state went on from epoch 1's: SGD momentum buffers exist
    # for every trained parameter and the poly schedule reached the same lr
    state = resumed['optimizer']['state']
    assert len(state) == len(full_2['optimizer']['state']) > 0
    lr = [g['lr'] for g in resumed['optimizer']['param_groups']]
    assert lr == pytest.approx(
        [g['lr'] for g in full_2['optimizer']['param_groups']])
    sched = resumed['param_schedulers'][0]
    assert sched['last_step'] == full_2['param_schedulers'][0]['last_step']


def test_checkpoint_holds_averaged_batchnorm_statistics(trained):
    """EMAHook(update_buffers=True), as in the synthetic stage-1 recipe: the
    checkpoint's BatchNorm statistics are averaged with the weights; with
    mmengine's default they would be the live net's, which the hook's swap
    leaves in ema_state_dict."""
    recipe = Config.fromfile(
        osp.join(REPO, 'configs/_base_/schedules/cam_synthvoc_40ep.py'))
    assert [h.get('update_buffers') for h in recipe.custom_hooks
            if h.type == 'EMAHook'] == [True]
    assert_batchnorm_statistics_averaged(
        load(osp.join(trained, 'epoch_2.pth')))


def test_cam_inference_scores_and_resumes(trained, tiny_synthvoc, tmp_path,
                                          python, run_tool):
    cam_dir = tmp_path / 'cams'
    metrics = tmp_path / 'metrics.json'
    args = [python, 'tools/test.py', CONFIG, osp.join(trained, 'epoch_2.pth'),
            '--work-dir', str(tmp_path / 'test'), '--cam-dir', str(cam_dir),
            '--split', 'ImageSets/Segmentation/val.txt', '--metrics-json',
            str(metrics), '--cfg-options', *data_options(tiny_synthvoc)]
    run_tool(*args)
    with open(metrics) as f:
        first = json.load(f)
    files = sorted(p.name for p in cam_dir.glob('*.npz'))
    assert len(files) == 8 and 0 <= first['mIoU'] <= 100
    # the folder says what made its CAMs
    with open(cam_dir / 'mmcyc_manifest.json') as f:
        manifest = json.load(f)
    assert manifest['state'] == 'done'
    assert manifest['parts']['data_root'] == tiny_synthvoc
    assert 'sweep/best_mIoU' in first and first['sweep/best_mIoU'] >= \
        first['sweep/mIoU@0.20'] - 1e-6
    # interrupted inference: half of the CAM files are lost; the rerun
    # recomputes them and reads the others back, with the same scores
    for name in files[::2]:
        (cam_dir / name).unlink()
    log = run_tool(*args).stdout
    assert f'wrote 4 CAMs to {cam_dir} (4 read back)' in log
    with open(metrics) as f:
        second = json.load(f)
    assert sorted(p.name for p in cam_dir.glob('*.npz')) == files
    assert second['mIoU'] == pytest.approx(first['mIoU'], abs=0.05)


def test_cam_dir_of_another_checkpoint_is_refused(trained, tiny_synthvoc,
                                                  tmp_path, python, run_tool):
    """CAMs of epoch 2 in --cam-dir, then epoch 1's checkpoint with the same
    folder: refused (they would be read back and scored as epoch 1's);
    --overwrite remakes them."""
    import subprocess
    cam_dir = tmp_path / 'cams'

    def args(epoch, *extra):
        return [python, 'tools/test.py', CONFIG,
                osp.join(trained, f'epoch_{epoch}.pth'), '--work-dir',
                str(tmp_path / 'test'), '--cam-dir', str(cam_dir), '--split',
                'ImageSets/Segmentation/val.txt', *extra, '--cfg-options',
                *data_options(tiny_synthvoc)]

    run_tool(*args(2))
    cams_2 = {p.name: p.read_bytes() for p in cam_dir.glob('*.npz')}
    proc = subprocess.run(args(1), capture_output=True, text=True)
    assert proc.returncode != 0
    assert f'{cam_dir} already holds 8 files of CAMs made by other inputs ' \
        '(checkpoint differ' in proc.stderr
    assert {p.name: p.read_bytes() for p in cam_dir.glob('*.npz')} == cams_2
    run_tool(*args(1, '--overwrite'))
    cams_1 = {p.name: p.read_bytes() for p in cam_dir.glob('*.npz')}
    assert sorted(cams_1) == sorted(cams_2)
    assert any(cams_1[name] != cams_2[name] for name in cams_1)


def run_test_tool(python, checkpoint, tmp_path, data_root):
    """tools/test.py on CONFIG with ``checkpoint``, output captured."""
    import subprocess
    return subprocess.run(
        [python, 'tools/test.py', CONFIG, str(checkpoint), '--work-dir',
         str(tmp_path / 'w'), '--cfg-options', *data_options(data_root)],
        capture_output=True, text=True, cwd=osp.dirname(osp.dirname(
            osp.dirname(osp.abspath(__file__)))))


def test_checkpoint_with_wrong_keys_is_refused(tiny_synthvoc, tmp_path,
                                               python):
    bad = tmp_path / 'other_model.pth'
    torch.save({'state_dict': {'fc.weight': torch.zeros(3, 3)}}, bad)
    proc = run_test_tool(python, bad, tmp_path, tiny_synthvoc)
    assert proc.returncode != 0
    assert 'other_model.pth does not match CAMClassifier' in proc.stderr
    assert 'fc.weight' in proc.stderr


def test_dist_train_two_cpu_processes(tiny_synthvoc, tmp_path, run_tool,
                                     python, free_port):
    work = str(tmp_path / 'dist')
    proc = run_tool(
        'bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work,
        '--cfg-options', 'train_cfg.max_epochs=1', *data_options(tiny_synthvoc),
        env=dict(PORT=free_port, PYTHON=python))
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: pytorch' in log
    assert "dist_cfg: {'backend': 'gloo'}" in log
    ckpt = load(osp.join(work, 'epoch_1.pth'))
    # 24 images, batch 4 per rank, 2 ranks -> 3 iterations per epoch
    assert ckpt['meta']['iter'] == 3


def command_line(pid):
    """A process's command line from /proc, its arguments joined by spaces
    (OSError once the process is gone)."""
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
        return f.read().replace(b'\0', b' ').decode()


def processes_with(text):
    """PIDs of the processes whose command line contains ``text``."""
    import os
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            cmdline = command_line(pid)
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(pid))
    return pids


def describe_processes(pids):
    """One line per pid: state, parent and command line, read from /proc,
    for an assertion message that says which process was left over."""
    lines = []
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            cmdline = command_line(pid)
        except OSError:
            lines.append(f'{pid}: gone')
            continue
        lines.append(f'{pid}: state {fields[0]}, parent {fields[1]}: '
                     f'{cmdline[:160]}')
    return '\n'.join(lines)


def test_sigterm_to_dist_train_stops_every_worker(tiny_synthvoc, tmp_path,
                                                  python, free_port):
    """SIGTERM to the launcher script (as a scheduler or ``kill`` sends it)
    stops torchrun and both training ranks: none is left writing
    checkpoints."""
    import os
    import signal
    import subprocess
    import time
    work = str(tmp_path / 'dist_killed')
    launcher_log = open(tmp_path / 'dist_train.log', 'w')
    script = subprocess.Popen(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work,
         '--cfg-options', 'train_cfg.max_epochs=200',
         *data_options(tiny_synthvoc)],
        env=dict(os.environ, PORT=free_port, PYTHON=python),
        stdout=launcher_log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not osp.isfile(
                osp.join(work, 'epoch_1.pth')):  # both ranks are training
            assert script.poll() is None, 'the training ended early'
            time.sleep(0.5)
        assert len(processes_with(work)) >= 3  # torchrun and two ranks
        script.send_signal(signal.SIGTERM)  # the script's pid only
        deadline = time.time() + 60
        while processes_with(work) and time.time() < deadline:
            time.sleep(0.5)
        left = processes_with(work)
        if left:  # the launcher wrote to the file's descriptor directly
            tail = (tmp_path / 'dist_train.log').read_text()[-3000:]
            raise AssertionError(
                'left running 60 s after SIGTERM:\n' +
                describe_processes(left) + '\nlauncher output, last lines:\n'
                + tail)
    finally:
        try:
            os.killpg(script.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in processes_with(work):
            os.kill(pid, signal.SIGKILL)
        script.wait()
        launcher_log.close()


def test_dist_test_shards_images_and_gathers_metrics(trained, tiny_synthvoc,
                                                     tmp_path, python,
                                                     run_tool, free_port):
    ckpt = osp.join(trained, 'epoch_2.pth')
    common = ['--split', 'ImageSets/Segmentation/val.txt', '--cfg-options',
              *data_options(tiny_synthvoc)]
    single, dist = tmp_path / 'single.json', tmp_path / 'dist.json'
    run_tool(python, 'tools/test.py', CONFIG, ckpt, '--work-dir',
             str(tmp_path / 'w1'), '--cam-dir', str(tmp_path / 'cams1'),
             '--metrics-json', str(single), *common)
    proc = run_tool('bash', 'tools/dist_test.sh', CONFIG, ckpt, '2',
                    '--work-dir', str(tmp_path / 'w2'), '--cam-dir',
                    str(tmp_path / 'cams2'), '--metrics-json', str(dist),
                    *common, env=dict(PORT=free_port, PYTHON=python))
    assert 'Distributed launcher: pytorch' in proc.stdout + proc.stderr
    with open(single) as f, open(dist) as g:
        single_metrics, dist_metrics = json.load(f), json.load(g)
    # 8 val images split over 2 ranks, metrics gathered: same scores
    assert dist_metrics['mIoU'] == pytest.approx(single_metrics['mIoU'],
                                                 abs=0.01)
    assert sorted(p.name for p in (tmp_path / 'cams2').iterdir()) == \
        sorted(p.name for p in (tmp_path / 'cams1').iterdir())


def test_checkpoint_with_wrong_shapes_is_refused(tiny_synthvoc, tmp_path,
                                                 python):
    """Same keys, one tensor of another shape: mmengine would skip it and
    score the random initialisation; test.py must refuse before loading."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import mmcyc  # noqa: F401
    register_all_modules()
    model = MODELS.build(Config.fromfile(CONFIG).model)
    state_dict = model.state_dict()
    key = next(k for k, v in state_dict.items() if v.dim() == 4)
    shape = list(state_dict[key].shape)
    state_dict[key] = torch.zeros([shape[0] + 1] + shape[1:])
    bad = tmp_path / 'narrower.pth'
    torch.save({'state_dict': state_dict}, bad)
    proc = run_test_tool(python, bad, tmp_path, tiny_synthvoc)
    assert proc.returncode != 0
    assert 'narrower.pth does not match CAMClassifier' in proc.stderr
    assert '1 shape mismatches' in proc.stderr
    assert f'{key}: checkpoint ({shape[0] + 1}' in proc.stderr
