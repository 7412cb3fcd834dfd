# Copyright (c) mmcyc contributors. All rights reserved.
"""The paper's Table 4: pseudo-mask mIoU of refined CAMs against N.

Runs ``tools/refine_cam.py`` once per N (sharing one feature bank) and writes
the table as markdown and JSON.

    python tools/analysis_tools/sweep_num_refs.py CONFIG CKPT --cam-dir CAMS \
        --out-dir OUT [--num-refs 0 8 16 32 64 128] [refine_cam.py options]

On a finished ``tools/run_pipeline.py`` run, ``--run WORK`` takes CONFIG,
CKPT, CAMS, the data root and the sampling seed (``refiner.seed``) from the
run's manifests, so that N = ``refine.num_refs`` repeats its "CAM + Cyc" row
(``--classifier-features``: F = the stage-1 classifier, its "Eq. 14, F =
classifier" row); ``--cfg-options`` given as well are applied after them:

    python tools/analysis_tools/sweep_num_refs.py --run WORK --out-dir OUT \
        [--classifier-features] [--num-refs ...] [refine_cam.py options]
"""
import argparse
import json
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmcyc.apis.pipeline_run_inputs import PipelineRunInputs  # noqa: E402
from mmcyc.utils import atomic_open  # noqa: E402
from mmcyc.utils.child_process import run_child  # noqa: E402


def parse_args():
    # --run first: with it there are no positionals, so that options passed
    # on to refine_cam.py (``--workers 0``) cannot fill CONFIG and CKPT
    run_parser = argparse.ArgumentParser(add_help=False)
    run_parser.add_argument('--run', metavar='WORK')
    run_args, _ = run_parser.parse_known_args()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    if run_args.run is None:
        parser.add_argument('config', help='CyCSNet config')
        parser.add_argument(
            'checkpoint',
            help="CyCSNet weights ('-' with --init-from-classifier CKPT: F "
            '= the stage-1 classifier)')
        parser.add_argument('--cam-dir', required=True, help='stage-1 CAMs')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument(
        '--run', metavar='WORK',
        help='work folder of a finished tools/run_pipeline.py run, in place '
        'of CONFIG CKPT --cam-dir: its config, weights, CAMs, data root '
        'and seed')
    parser.add_argument(
        '--classifier-features', action='store_true',
        help='with --run: F = the run\'s stage-1 classifier (no stage 2)')
    parser.add_argument(
        '--num-refs', type=int, nargs='+', default=[0, 8, 16, 32, 64, 128])
    args, passthrough = parser.parse_known_args()
    if args.run is not None and '--cam-dir' in passthrough:
        parser.error('--run takes the CAM folder from the run; give either '
                     '--run or CONFIG CKPT --cam-dir')
    if args.run is None and args.classifier_features:
        parser.error('--classifier-features needs --run; otherwise pass '
                     'CKPT as - --init-from-classifier CAM_CKPT')
    return args, passthrough


def refine_cam_inputs(args, passthrough):
    """CONFIG, the weight arguments, the CAM folder and the other options
    of ``tools/refine_cam.py``; with ``--run`` the run's, its
    ``--cfg-options`` items placed before the user's (which win)."""
    if args.run is None:
        return args.config, [args.checkpoint], args.cam_dir, passthrough
    run = PipelineRunInputs(args.run)
    options = list(passthrough)
    if '--cfg-options' in options:
        at = options.index('--cfg-options') + 1
        options[at:at] = run.cfg_options()
    else:
        options += ['--cfg-options', *run.cfg_options()]
    return (run.cyc_config, run.weights(args.classifier_features),
            run.cam_dir, options)


def main():
    args, passthrough = parse_args()
    config, weights, cam_dir, options = refine_cam_inputs(args, passthrough)
    os.makedirs(args.out_dir, exist_ok=True)
    bank = osp.join(args.out_dir, 'feature_bank.pth')
    rows = []
    for num_refs in args.num_refs:
        out = osp.join(args.out_dir, f'n{num_refs}')
        metrics = osp.join(out, 'metrics.json')
        # always through the tool: refined CAMs already in OUT/n<N> are read
        # back only when their folder's manifest says the same weights,
        # settings and CAMs made them (else it stops), and are rescored
        run_child([
            sys.executable,
            osp.join(REPO, 'tools', 'refine_cam.py'), config, *weights,
            '--cam-dir', cam_dir, '--out-dir', out, '--num-refs',
            str(num_refs), '--bank-file', bank, '--metrics-json', metrics,
            *options
        ], env=dict(os.environ, PYTHONPATH=REPO))
        with open(metrics) as f:
            result = json.load(f)
        rows.append(dict(num_refs=num_refs, mIoU=result['mIoU'],
                         mIoU_unrefined=result['mIoU_unrefined']))
    base = rows[0]['mIoU_unrefined']
    lines = ['| N | mIoU (%) | vs. N = 0 |', '|---|---|---|'] + [
        f"| {r['num_refs']} | {r['mIoU']:.2f} | {r['mIoU'] - base:+.2f} |"
        for r in rows
    ]
    table = '\n'.join(lines) + '\n'
    with atomic_open(osp.join(args.out_dir, 'table4.md'), 'w') as f:
        f.write(table)
    with atomic_open(osp.join(args.out_dir, 'table4.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    print(table)


if __name__ == '__main__':
    main()
