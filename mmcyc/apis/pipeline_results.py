# Copyright (c) mmcyc contributors. All rights reserved.
"""The main job's results: results.json and the paper's Table 1 layout."""
import json
import os.path as osp

from mmcyc.utils import atomic_open


def write_results(rows: dict, work_dir: str, source: str = 'CAM') -> str:
    """Write results.json and results.md atomically; return the table.

    The table has the layout of the paper's Table 1: pseudo-mask mIoU on
    train, and val mIoU of the stage-5 model trained on the pseudo masks of
    train_aug (one pass, and with ``seg.tta`` mmseg's multi-scale + flip
    test); rows not measured (or not run) show as blank. ``source``
    names the maps (CAM, SSENet, LPCAM, ...) in every row, note and recall
    label of results.md: the keys of results.json keep the ``cam`` names
    whatever the source.
    """

    def cell(key: str) -> str:
        if key not in rows:
            return ''
        return 'n/a' if rows[key] is None else f'{rows[key]:.2f}'

    lines = [
        '| method | pseudo masks, train (mIoU %) | '
        'stage-5 model, val (mIoU %) | the same, multi-scale + flip |',
        '|---|---|---|---|',
        f"| {source} | {cell('cam')} | | |",
        f"| {source} + Cyc | {cell('cam_cyc')} | | |",
        f'| {source} + Eq. 14 with F = the classifier (no stage 2; '
        'ablation) | '
        f"{cell('cam_eq14_cls')} | | |",
        f"| {source} + RW (AffinityNet) | {cell('cam_rw')} | "
        f"{cell('seg_val_rw')} | {cell('seg_val_rw_tta')} |",
        f"| {source} + RW + Cyc | {cell('cam_rw_cyc')} | "
        f"{cell('seg_val')} | {cell('seg_val_tta')} |",
        '',
        f'Pseudo masks at background score 0.2 ({source} + Cyc: N = 16; '
        f'the random walk of {source} + RW + Cyc starts from N = 64, which '
        f"scores {cell('cam_cyc_rw_n')} before the walk). Also measured: "
        f"{source} on val {cell('cam_val')}; {source} on train at the oracle "
        f"background score {rows.get('cam_sweep_bg', '')}: "
        f"{cell('cam_sweep_best')}.",
    ]
    if 'cam_base' in rows:
        lines[-1] += (f' The stage-1 CAMs that {source} starts from score '
                      f"{cell('cam_base')} on train.")
    if 'corr_acc_cls' in rows or 'recall_cam_salient' in rows:
        lines += [
            '',
            'Part correspondence (share of on-part W^f peaks that land on '
            'the same part of another image of the class, %): classifier '
            f"features {cell('corr_acc_cls')}, CyCSNet "
            f"{cell('corr_acc_cyc')}; with each peak kept in the target's "
            f"object of the class {cell('corr_acc_object_cls')} and "
            f"{cell('corr_acc_object_cyc')} (a random cell of the object: "
            f"{cell('corr_chance_object')}); kept in the target's objects, "
            'on an object of the class where the target holds another '
            f"class too {cell('corr_class_object_cls')} and "
            f"{cell('corr_class_object_cyc')} (a random object cell: "
            f"{cell('corr_chance_class_object')}).",
            '',
            f'| {source} maps of train | recall on salient parts | '
            'on weak parts | on bodies |',
            '|---|---|---|---|',
        ]
        for cams, label in (
                ('cam', source), ('cyc', f'{source} + Cyc (N = 16)'),
                ('cyc_rw', f'{source} + Cyc (N = 64)'),
                ('eq14_cls', f'{source} + Eq. 14 with F = classifier '
                 '(no stage 2)')):
            lines.append(f'| {label} | ' + ' | '.join(
                cell(f'recall_{cams}_{region}')
                for region in ('salient', 'weak', 'body')) + ' |')

    table = '\n'.join(lines) + '\n'
    for name, text in (('results.json', json.dumps(rows, indent=2)),
                       ('results.md', table)):
        with atomic_open(osp.join(work_dir, name), 'w') as f:
            f.write(text)
    return table
