"""Table 4's sweep over N, tools/analysis_tools/sweep_num_refs.py."""
import json
import subprocess

CONFIG = 'tests/data/cyc_tiny_synthvoc.py'
TOOL = 'tools/analysis_tools/sweep_num_refs.py'


def sweep(python, inputs, root, out, weights):
    return [python, TOOL, CONFIG, *weights, '--cam-dir', inputs['cam_dir'],
            '--out-dir', out, '--num-refs', '0', '4', '--workers', '0',
            '--cfg-options', f'train_dataloader.dataset.dataset.data_root={root}']


def test_sweep_rows_and_no_stale_reuse(tiny_stage_inputs, tiny_synthvoc,
                                       tmp_path, python, run_tool):
    out = str(tmp_path / 'table4')
    run_tool(*sweep(python, tiny_stage_inputs, tiny_synthvoc, out,
                    [tiny_stage_inputs['cyc']]))
    with open(f'{out}/table4.json') as f:
        rows = json.load(f)
    assert [r['num_refs'] for r in rows] == [0, 4]
    for row in rows:  # each row is its refinement's own score
        with open(f"{out}/n{row['num_refs']}/metrics.json") as f:
            metrics = json.load(f)
        assert row['mIoU'] == metrics['mIoU'] and metrics['num_refs'] == \
            row['num_refs']
    # no reference image: the CAMs are left as they are
    assert abs(rows[0]['mIoU'] - rows[0]['mIoU_unrefined']) < 1e-6
    assert '| 4 |' in open(f'{out}/table4.md').read()
    # the same folder with other weights (F = the classifier): refused by
    # refine_cam's folder manifest instead of reusing the old rows
    proc = subprocess.run(
        sweep(python, tiny_stage_inputs, tiny_synthvoc, out,
              ['-', '--init-from-classifier', tiny_stage_inputs['cls']]),
        capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'files of refined CAMs made by other inputs' in proc.stderr
    with open(f'{out}/table4.json') as f:
        assert json.load(f) == rows
