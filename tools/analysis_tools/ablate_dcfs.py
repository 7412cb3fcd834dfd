# Copyright (c) mmcyc contributors. All rights reserved.
"""The paper's Table 5 (DCFS ablation) and Fig. 4 (beta2 during training).

    python tools/analysis_tools/ablate_dcfs.py CYC_CONFIG \\
        --cam-checkpoint CAM_CKPT --cam-dir CAMS --out-dir OUT \\
        [--settings fixed0 fixed0.005 fixed0.02 dynamic momentum \\
                    momentum_selected] [--seeds 0 1 2] [--num-refs 16] \\
        [--data-root ROOT] [--workers W] [--cfg-options ...]

For every (setting, seed) CyCSNet is trained from the stage-1 classifier
CAM_CKPT (``tools/train.py CYC_CONFIG``, in ``OUT/<setting>/seed<s>``), then
the stage-1 CAMs of ``ImageSets/Segmentation/train.txt`` in CAMS are refined
with N = ``--num-refs`` same-class images of ``train_aug.txt`` (Eq. 14,
``tools/refine_cam.py``, in ``OUT/<setting>/seed<s>/refined`` with that run's
own feature bank: F differs between runs) and scored as pseudo masks.

Settings (the DCFS rule of beta2, ``DCFSHook``, and the statistic it follows,
``CycleConsistencyHead.dcfs_statistic``):

- ``fixed<v>``: beta2 stays v (``mode='fixed', init_value=v``), any v in
  [0, 1]; ``fixed0`` is training without DCFS (every beta1 candidate kept),
  the baseline, first row of Table 5;
- ``dynamic``: beta2 <- the statistic of the iteration (from 0);
- ``momentum``: Eq. 9, beta2 <- kappa beta2 + (1 - kappa) statistic from 0
  (kappa from the config, 0.95): the method's default;
- ``momentum_selected``: Eq. 9 with the paper's literal statistic, the mean
  W^b over V^sel (``dcfs_statistic='selected'``); the other settings use the
  mean over all beta1 candidates (``'candidates'``).

The default list is fixed0, fixed0.005, fixed0.02, dynamic, momentum,
momentum_selected: on the synthetic data (``configs/cyc_resnet38_synthvoc.py``)
the momentum beta2 settles near 0.01 (the mean return probability is small on
its 12 x 12 grid), so fixed thresholds around that value are the informative
ones; the paper's beta2 converges near 0.4 on VOC (Fig. 4), where fixed
values such as ``fixed0.1 fixed0.3 fixed0.5`` are the ones to compare.

Each run keeps a manifest (``RUN/mmcyc_run.json``: the config as resolved,
the run's overrides, the classifier checkpoint and CAM folder by digest, N).
A run done with the same inputs is skipped; one made from other inputs is
removed and made afresh; an interrupted one continues (a whole final
checkpoint is not trained again, a cut-short training resumes, a written
metrics file is not refined again).
``--cfg-options`` go to both tools, before the run's own overrides (data
root, classifier checkpoint, seed, setting); ``--workers`` to
``tools/refine_cam.py``.

Outputs:

- ``OUT/table5.md`` / ``OUT/table5.json``: per setting, the mIoU (%) of the
  refined train CAMs for each seed, their mean and standard deviation (the
  *sample* standard deviation, ddof = 1, over the seeds; none with a single
  seed), the mIoU of the unrefined CAMs, and the final beta2 and |V^sel|
  (``cyc_num_selected``) of each run: the last values in its
  ``vis_data/scalars.json`` (beta2 as used in the last logged iteration,
  |V^sel| averaged over the logger's window);
- ``OUT/fig4/vis_data/vis_image/fig4_beta2_0.png``: beta2 over the training
  iterations of every setting for the first of ``--seeds``, in one panel,
  through mmengine's ``Visualizer`` (``LocalVisBackend``);
- ``OUT/ablate_dcfs.log``: the progress log.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.logging import MMLogger

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmcyc.fileio import (is_complete_checkpoint,  # noqa: E402
                          repair_resume_point)
from mmcyc.utils.child_process import run_child  # noqa: E402
from mmcyc.utils.config_options import (data_root_options,  # noqa: E402
                                        final_checkpoint_name,
                                        parse_cfg_options)
from mmcyc.utils.manifest import (config_digest, describe_mismatch,  # noqa
                                  file_digest, folder_key, make_key,
                                  manifest_matches, read_manifest,
                                  write_manifest)
from mmcyc.visualization import (add_local_image,  # noqa: E402
                                 draw_overlaid_curves,
                                 read_scalars)

DEFAULT_SETTINGS = ('fixed0', 'fixed0.005', 'fixed0.02', 'dynamic',
                    'momentum', 'momentum_selected')
SETTING_FORMS = ('fixed<v> (v in [0, 1], e.g. fixed0, fixed0.02)', 'dynamic',
                 'momentum', 'momentum_selected')
SPLIT = 'ImageSets/Segmentation/train.txt'
BANK_SPLIT = 'ImageSets/Segmentation/train_aug.txt'
RUN_MANIFEST = 'mmcyc_run.json'  # what a run was made of, in its work dir
STD = 'sample standard deviation (ddof = 1) over seeds; null with one seed'


def parse_setting(name: str) -> dict:
    """A setting name -> the DCFS hook's mode and init_value and the head's
    statistic.

    Args:
        name (str): ``fixed<v>``, ``dynamic``, ``momentum`` or
            ``momentum_selected``.

    Returns:
        dict: ``mode``, ``init_value`` (float) and ``dcfs_statistic``.

    Raises:
        ValueError: on any other name, naming the valid forms.
    """
    fixed = re.fullmatch(r'fixed(.+)', name)
    if fixed:
        try:
            value = float(fixed.group(1))
        except ValueError:
            value = float('nan')
        if math.isfinite(value) and 0 <= value <= 1:
            return dict(mode='fixed', init_value=value,
                        dcfs_statistic='candidates')
    elif name in ('dynamic', 'momentum'):
        return dict(mode=name, init_value=0.0, dcfs_statistic='candidates')
    elif name == 'momentum_selected':
        return dict(mode='momentum', init_value=0.0,
                    dcfs_statistic='selected')
    raise ValueError(f'unknown DCFS setting {name!r}; valid forms: '
                     f'{", ".join(SETTING_FORMS)}')


def dcfs_hook_index(cfg: Config) -> int:
    """Index of the (single) ``DCFSHook`` in ``cfg.custom_hooks``."""
    found = [
        i for i, hook in enumerate(cfg.get('custom_hooks') or [])
        if hook.get('type') in ('DCFSHook', 'mmcyc.DCFSHook')
    ]
    if len(found) != 1:
        raise ValueError(f'{cfg.filename}: expected one DCFSHook in '
                         f'custom_hooks, found {len(found)}')
    return found[0]


def setting_options(setting: dict, hook_index: int) -> List[str]:
    """The ``--cfg-options`` of a setting (``parse_setting``'s dict)."""
    hook = f'custom_hooks.{hook_index}'
    return [
        f'{hook}.mode={setting["mode"]}',
        f'{hook}.init_value={setting["init_value"]!r}',
        f'model.head.dcfs_statistic={setting["dcfs_statistic"]}'
    ]


def parse_args():
    parser = argparse.ArgumentParser(
        description='DCFS ablation: Table 5 and Fig. 4 of the paper')
    parser.add_argument('config', help='CyCSNet (stage 2) config')
    parser.add_argument('--cam-checkpoint', required=True,
                        help='trained stage-1 classifier checkpoint')
    parser.add_argument('--cam-dir', required=True,
                        help='stage-1 CAMs of every train_aug image')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--settings', nargs='+', default=DEFAULT_SETTINGS,
                        help=f'one of: {", ".join(SETTING_FORMS)}')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--num-refs', type=int, default=16,
                        help='N of the refinement (Table 1 without RW: 16)')
    parser.add_argument('--data-root',
                        help='dataset folder for every dataloader of CONFIG')
    parser.add_argument('--workers', type=int,
                        help="refine_cam.py's dataloader workers")
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='overrides for train.py and refine_cam.py')
    return parser.parse_args()


class Ablation:
    """Train, refine and score one (setting, seed) run after another."""

    def __init__(self, args, logger):
        self.args = args
        self.refine_extra = [] if args.workers is None else [
            '--workers', str(args.workers)
        ]
        self.logger = logger
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(parse_cfg_options(args.cfg_options))
        self.hook_index = dcfs_hook_index(cfg)
        self.kappa = float(cfg.custom_hooks[self.hook_index].get(
            'kappa', 0.95))
        self.final_name = final_checkpoint_name(cfg)
        self.base_options = (data_root_options(cfg, args.data_root)
                             if args.data_root else []) + list(
                                 args.cfg_options)
        if not osp.isfile(args.cam_checkpoint):
            raise FileNotFoundError(
                f'--cam-checkpoint {args.cam_checkpoint}: no such file (the '
                'stage-1 classifier checkpoint)')
        # the run keys' shared parts, digested once
        self.config_key = config_digest(args.config)
        self.cam_checkpoint_key = file_digest(args.cam_checkpoint)
        self.cam_dir_key = folder_key(args.cam_dir) or osp.abspath(
            args.cam_dir)
        self.env = dict(
            os.environ,
            PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))

    def work_dir(self, name: str, seed: int) -> str:
        return osp.join(self.args.out_dir, name, f'seed{seed}')

    def call(self, run: str, tool: str, *cmd_args: str) -> None:
        cmd = [sys.executable, osp.join(REPO, 'tools', tool), *cmd_args]
        self.logger.info(f'{run}: $ ' + ' '.join(cmd))
        try:
            # its own process group: a signal to this tool stops it too
            run_child(cmd, env=self.env)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(
                f'DCFS ablation run {run}: tools/{tool} failed with exit '
                f'status {error.returncode}; its output is above') from error

    def train_and_refine(self, run: str, work: str,
                         options: List[str]) -> None:
        """Train a run (resuming a cut-short training), then refine."""
        checkpoint = osp.join(work, self.final_name)
        if is_complete_checkpoint(checkpoint):
            self.logger.info(f'{run}: final checkpoint {checkpoint} exists, '
                             'training skipped')
        else:
            if osp.isfile(checkpoint):  # cut short while written
                os.remove(checkpoint)
            resume = ['--resume'] if repair_resume_point(work) else []
            self.call(run, 'train.py', self.args.config, '--work-dir', work,
                      *resume, '--cfg-options', *options)
            if not osp.isfile(checkpoint):
                raise RuntimeError(f'DCFS ablation run {run}: training ended '
                                   f'without {checkpoint}')
        metrics_file = osp.join(work, 'refine_metrics.json')
        if osp.isfile(metrics_file):
            self.logger.info(f'{run}: {metrics_file} exists, refinement '
                             'skipped')
            return
        self.call(run, 'refine_cam.py', self.args.config, checkpoint,
                  '--cam-dir', self.args.cam_dir, '--out-dir',
                  osp.join(work, 'refined'), '--split', SPLIT,
                  '--bank-split', BANK_SPLIT, '--num-refs',
                  str(self.args.num_refs), '--metrics-json', metrics_file,
                  *self.refine_extra, '--cfg-options', *options)

    def run(self, name: str, setting: dict, seed: int) -> dict:
        run = f'{name}/seed{seed}'
        work = self.work_dir(name, seed)
        options = [
            *self.base_options,
            f'model.cam_classifier_checkpoint={self.args.cam_checkpoint}',
            f'randomness.seed={seed}',
            *setting_options(setting, self.hook_index)
        ]
        # what the run is made of: another config, classifier, CAM folder,
        # N or data root makes it afresh instead of reusing its outputs
        parts = dict(config=self.config_key, options=options,
                     cam_checkpoint=self.cam_checkpoint_key,
                     cam_dir=self.cam_dir_key, num_refs=self.args.num_refs)
        key, manifest = make_key(parts), osp.join(work, RUN_MANIFEST)
        if manifest_matches(manifest, key):
            self.logger.info(f'{run}: done with the current inputs '
                             f'({manifest}): refinement and training skipped')
        else:
            state = read_manifest(manifest)
            if osp.isdir(work) and (state is None or state['key'] != key):
                self.logger.info(f'{run}: ' +
                                 describe_mismatch(manifest, key, parts) +
                                 f'; {work} is made afresh')
                shutil.rmtree(work)
            write_manifest(manifest, key, 'started', parts)
            self.train_and_refine(run, work, options)
            write_manifest(manifest, key, 'done', parts)
        checkpoint = osp.join(work, self.final_name)
        metrics_file = osp.join(work, 'refine_metrics.json')
        with open(metrics_file) as f:
            metrics = json.load(f)
        scalars = run_scalars(work, ('beta2', 'cyc_num_selected'))
        last = {key: values[-1] for key, (_, values) in scalars.items()}
        result = dict(
            seed=seed,
            work_dir=work,
            checkpoint=checkpoint,
            metrics=metrics_file,
            mIoU=metrics['mIoU'],
            mIoU_unrefined=metrics['mIoU_unrefined'],
            beta2_final=last.get('beta2'),
            num_selected_final=last.get('cyc_num_selected'))
        self.logger.info(
            f'{run}: mIoU {result["mIoU"]:.2f} (unrefined '
            f'{result["mIoU_unrefined"]:.2f}), final beta2 '
            f'{fmt(result["beta2_final"], 4)}, |V^sel| '
            f'{fmt(result["num_selected_final"], 1)}')
        return result


def run_scalars(work: str, keys) -> Dict[str, tuple]:
    """``read_scalars`` of a run, every (resumed) session in time order."""
    series: Dict[str, tuple] = {}
    for path in sorted(
            glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))):
        for key, (steps, values) in read_scalars(path, keys).items():
            series.setdefault(key, ([], []))
            series[key][0].extend(steps)
            series[key][1].extend(values)
    return series


def mean_std(values: List[Optional[float]]):
    """Mean and sample std (ddof = 1; None for one value) of the non-None."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def fmt(value: Optional[float], digits: int = 2) -> str:
    return 'n/a' if value is None else f'{value:.{digits}f}'


def fmt_mean_std(mean, std, digits: int = 2) -> str:
    if mean is None:
        return 'n/a'
    return fmt(mean, digits) + ('' if std is None else
                                f' ± {fmt(std, digits)}')


def describe(setting: dict, kappa: float) -> str:
    """The beta2 rule of a setting, for the table."""
    if setting['mode'] == 'fixed':
        return f'fixed beta2 = {setting["init_value"]:g}'
    over = 'V^sel' if setting['dcfs_statistic'] == 'selected' else \
        'candidates'
    if setting['mode'] == 'dynamic':
        return f'beta2 <- mean W^b over {over}'
    return f'Eq. 9 (kappa {kappa:g}), mean W^b over {over}'


def summarise(name: str, setting: dict, kappa: float,
              runs: List[dict]) -> dict:
    row = dict(setting=name, rule=describe(setting, kappa), **setting,
               runs=runs)
    for key in ('mIoU', 'mIoU_unrefined', 'beta2_final',
                'num_selected_final'):
        row[f'{key}_mean'], row[f'{key}_std'] = mean_std(
            [r[key] for r in runs])
    return row


def markdown(rows: List[dict]) -> str:
    base = rows[0]['mIoU_mean']
    lines = [
        '| setting | beta2 rule | mIoU per seed (%) | mIoU (%) | vs. '
        f'{rows[0]["setting"]} | unrefined mIoU (%) | final beta2 | '
        'final \\|V^sel\\| |', '|---|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        runs = row['runs']
        lines.append('| ' + ' | '.join([
            row['setting'], row['rule'], ' / '.join(
                fmt(r['mIoU']) for r in runs),
            fmt_mean_std(row['mIoU_mean'], row['mIoU_std']),
            f'{row["mIoU_mean"] - base:+.2f}', fmt(
                row['mIoU_unrefined_mean']), ' / '.join(
                    fmt(r['beta2_final'], 4) for r in runs), ' / '.join(
                        fmt(r['num_selected_final'], 1) for r in runs)
        ]) + ' |')
    return '\n'.join(lines) + '\n'


def draw_fig4(args, names: List[str], seed: int, logger) -> Optional[str]:
    """beta2 of every setting (one seed) in one panel, as a PNG."""
    series = {}
    for name in names:
        beta2 = run_scalars(
            osp.join(args.out_dir, name, f'seed{seed}'), ('beta2', ))
        if 'beta2' in beta2:
            series[name] = beta2['beta2']
        else:
            logger.warning(f'fig4: no beta2 logged by {name}/seed{seed}')
    if not series:
        logger.warning('fig4: no logged beta2 to draw')
        return None
    save_dir = osp.join(args.out_dir, 'fig4')
    path = add_local_image(
        save_dir, 'fig4_beta2',
        draw_overlaid_curves(
            series,
            title=f'beta2 during CyCSNet training (seed {seed})',
            ylabel='beta2'), 'mmcyc_ablate_dcfs_fig4')
    logger.info(f'fig4: {path}')
    return path


def main():
    args = parse_args()
    settings = {name: parse_setting(name) for name in args.settings}
    os.makedirs(args.out_dir, exist_ok=True)
    logger = MMLogger.get_instance(
        'mmcyc_ablate_dcfs',
        log_file=osp.join(args.out_dir, 'ablate_dcfs.log'),
        file_mode='a')
    ablation = Ablation(args, logger)
    logger.info(f'DCFS ablation of {args.config}: settings '
                f'{list(settings)}, seeds {args.seeds}, N = {args.num_refs}')
    rows = []
    for name, setting in settings.items():
        runs = [ablation.run(name, setting, seed) for seed in args.seeds]
        rows.append(summarise(name, setting, ablation.kappa, runs))
    fig4 = draw_fig4(args, list(settings), args.seeds[0], logger)
    table = markdown(rows)
    with open(osp.join(args.out_dir, 'table5.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.out_dir, 'table5.json'), 'w') as f:
        json.dump(
            dict(
                config=args.config,
                cam_checkpoint=args.cam_checkpoint,
                cam_dir=args.cam_dir,
                num_refs=args.num_refs,
                split=SPLIT,
                bank_split=BANK_SPLIT,
                seeds=args.seeds,
                std=STD,
                fig4=fig4,
                settings=rows),
            f,
            indent=2)
    logger.info('Table 5 (mIoU of the refined train CAMs; std: ' + STD +
                ')\n' + table)


if __name__ == '__main__':
    main()
