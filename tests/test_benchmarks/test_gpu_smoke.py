"""benchmarks/gpu_smoke.py in its CPU mode: every stage runs and reports."""
import json
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STAGES = ('cam_train', 'cam_infer', 'cyc_train', 'cyc_train_fixed', 'refine',
          'aff_train', 'rw')


def test_cpu_mode_runs_every_stage(tmp_path):
    out = tmp_path / 'smoke.json'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'benchmarks', 'gpu_smoke.py'),
         '--device', 'cpu', '--size', '64', '--width', '0.125', '--iters',
         '1', '--images', '1', '--threads', '1', '--out', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results['amp'] is False and results['size'] == 64
    assert tuple(results['stages']) == STAGES
    for name, figures in results['stages'].items():
        assert figures['items_per_s'] > 0, name
        assert figures['items'] > 0 and figures['peak_mem_mb'] is None, name
        assert f'{name}:' in proc.stdout
    cyc = results['stages']['cyc_train']
    assert cyc['unit'] == 'pairs' and cyc['selection_buffer'] == 'exact'
    assert results['stages']['refine']['bank_placement'] == 'cpu'
