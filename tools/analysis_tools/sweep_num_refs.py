# Copyright (c) mmcyc contributors. All rights reserved.
"""The paper's Table 4: pseudo-mask mIoU of refined CAMs against N.

Runs ``tools/refine_cam.py`` once per N (sharing one feature bank) and writes
the table as markdown and JSON.

    python tools/analysis_tools/sweep_num_refs.py CONFIG CKPT --cam-dir CAMS \
        --out-dir OUT [--num-refs 0 8 16 32 64 128] [refine_cam.py options]
"""
import argparse
import json
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmcyc.utils import atomic_open  # noqa: E402
from mmcyc.utils.child_process import run_child  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--cam-dir', required=True)
    parser.add_argument('--out-dir', required=True)
    parser.add_argument(
        '--num-refs', type=int, nargs='+', default=[0, 8, 16, 32, 64, 128])
    args, passthrough = parser.parse_known_args()
    return args, passthrough


def main():
    args, passthrough = parse_args()
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
            osp.join(REPO, 'tools', 'refine_cam.py'), args.config,
            args.checkpoint, '--cam-dir', args.cam_dir, '--out-dir', out,
            '--num-refs',
            str(num_refs), '--bank-file', bank, '--metrics-json', metrics,
            *passthrough
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
