# Copyright (c) mmcyc contributors. All rights reserved.
"""The paper's Table 5 (DCFS ablation) and Fig. 4 (beta2 during training).

For every (setting, seed) CyCSNet is trained from the stage-1 classifier
(``tools/train.py``), the stage-1 CAMs of train are refined with N
same-class images of train_aug (Eq. 14, ``tools/refine_cam.py``) and scored
as pseudo masks. ``tools/analysis_tools/ablate_dcfs.py`` parses the
arguments and calls :func:`ablate_dcfs`; its docstring lists the settings,
the run manifests and the outputs.
"""
import glob
import json
import math
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import MMLogger

from mmcyc.fileio import is_complete_checkpoint, repair_resume_point
from mmcyc.utils.child_process import run_child
from mmcyc.utils.config_options import (data_root_options,
                                        final_checkpoint_name,
                                        parse_cfg_options)
from mmcyc.utils.manifest import (config_digest, describe_mismatch,
                                  file_digest, folder_key, make_key,
                                  manifest_matches, read_manifest,
                                  write_manifest)
from mmcyc.visualization import (add_local_image, draw_overlaid_curves,
                                 read_scalars)
from .stage_runner import PROJECT_ROOT

DEFAULT_SETTINGS = ('fixed0', 'fixed0.005', 'fixed0.02', 'dynamic',
                    'momentum', 'momentum_selected')
SETTING_FORMS = ('fixed<v> (v in [0, 1], e.g. fixed0, fixed0.02)', 'dynamic',
                 'momentum', 'momentum_selected')
SPLIT = 'ImageSets/Segmentation/train.txt'
BANK_SPLIT = 'ImageSets/Segmentation/train_aug.txt'
RUN_MANIFEST = 'mmcyc_run.json'  # what a run was made of, in its work dir
# what its training was made of (the refinement's N and CAMs left out)
TRAIN_MANIFEST = 'mmcyc_train.json'
REFINE_OUTPUTS = ('refined', 'refine_metrics.json')
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


class Ablation:
    """Train, refine and score one (setting, seed) run after another."""

    def __init__(self, opts, logger):
        """``opts``: config, cam_checkpoint, cam_dir, out_dir, num_refs,
        data_root, workers and cfg_options, as :func:`ablate_dcfs` takes
        them."""
        self.opts = opts
        self.refine_extra = [] if opts.workers is None else [
            '--workers', str(opts.workers)
        ]
        self.logger = logger
        cfg = Config.fromfile(opts.config)
        cfg.merge_from_dict(parse_cfg_options(opts.cfg_options))
        self.hook_index = dcfs_hook_index(cfg)
        self.kappa = float(cfg.custom_hooks[self.hook_index].get(
            'kappa', 0.95))
        self.final_name = final_checkpoint_name(cfg)
        self.base_options = (data_root_options(cfg, opts.data_root)
                             if opts.data_root else []) + list(
                                 opts.cfg_options)
        if not osp.isfile(opts.cam_checkpoint):
            raise FileNotFoundError(
                f'--cam-checkpoint {opts.cam_checkpoint}: no such file (the '
                'stage-1 classifier checkpoint)')
        # the run keys' shared parts, digested once
        self.config_key = config_digest(opts.config)
        self.cam_checkpoint_key = file_digest(opts.cam_checkpoint)
        self.cam_dir_key = folder_key(opts.cam_dir) or osp.abspath(
            opts.cam_dir)
        self.env = dict(
            os.environ,
            PYTHONPATH=PROJECT_ROOT + os.pathsep +
            os.environ.get('PYTHONPATH', ''))

    def work_dir(self, name: str, seed: int) -> str:
        return osp.join(self.opts.out_dir, name, f'seed{seed}')

    def call(self, run: str, tool: str, *cmd_args: str) -> None:
        cmd = [
            sys.executable,
            osp.join(PROJECT_ROOT, 'tools', tool), *cmd_args
        ]
        self.logger.info(f'{run}: $ ' + ' '.join(cmd))
        try:
            # its own process group: a signal to this tool stops it too
            run_child(cmd, env=self.env)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(
                f'DCFS ablation run {run}: tools/{tool} failed with exit '
                f'status {error.returncode}; its output is above') from error

    def train_and_refine(self, run: str, work: str, options: List[str],
                         train_manifest: tuple) -> None:
        """Train a run (resuming a cut-short training), then refine.

        ``train_manifest``: (path, key, parts) of the training's manifest,
        written 'done' once its final checkpoint is there.
        """
        checkpoint = osp.join(work, self.final_name)
        if is_complete_checkpoint(checkpoint):
            self.logger.info(f'{run}: final checkpoint {checkpoint} exists, '
                             'training skipped')
        else:
            if osp.isfile(checkpoint):  # cut short while written
                os.remove(checkpoint)
            resume = ['--resume'] if repair_resume_point(work) else []
            self.call(run, 'train.py', self.opts.config, '--work-dir', work,
                      *resume, '--cfg-options', *options)
            if not osp.isfile(checkpoint):
                raise RuntimeError(f'DCFS ablation run {run}: training ended '
                                   f'without {checkpoint}')
        path, key, parts = train_manifest
        write_manifest(path, key, 'done', parts)
        metrics_file = osp.join(work, 'refine_metrics.json')
        if osp.isfile(metrics_file):
            self.logger.info(f'{run}: {metrics_file} exists, refinement '
                             'skipped')
            return
        self.call(run, 'refine_cam.py', self.opts.config, checkpoint,
                  '--cam-dir', self.opts.cam_dir, '--out-dir',
                  osp.join(work, 'refined'), '--split', SPLIT,
                  '--bank-split', BANK_SPLIT, '--num-refs',
                  str(self.opts.num_refs), '--metrics-json', metrics_file,
                  *self.refine_extra, '--cfg-options', *options)

    def run(self, name: str, setting: dict, seed: int) -> dict:
        run = f'{name}/seed{seed}'
        work = self.work_dir(name, seed)
        options = [
            *self.base_options,
            f'model.cam_classifier_checkpoint={self.opts.cam_checkpoint}',
            f'randomness.seed={seed}',
            *setting_options(setting, self.hook_index)
        ]
        # what the run is made of: another config, classifier or data root
        # makes it afresh instead of reusing its outputs; another CAM folder
        # or N only its refinement (the training does not read them)
        train_parts = dict(config=self.config_key, options=options,
                           cam_checkpoint=self.cam_checkpoint_key)
        parts = dict(train_parts, cam_dir=self.cam_dir_key,
                     num_refs=self.opts.num_refs)
        key, manifest = make_key(parts), osp.join(work, RUN_MANIFEST)
        train_key = make_key(train_parts)
        train_manifest = osp.join(work, TRAIN_MANIFEST)
        if manifest_matches(manifest, key):
            self.logger.info(f'{run}: done with the current inputs '
                             f'({manifest}): refinement and training skipped')
        else:
            state = read_manifest(manifest)
            if osp.isdir(work) and (state is None or state['key'] != key):
                why = describe_mismatch(manifest, key, parts)
                if manifest_matches(train_manifest, train_key):
                    self.logger.info(f'{run}: {why}; its training is kept '
                                     '(the same inputs), its refinement is '
                                     'made afresh')
                    for name in REFINE_OUTPUTS:
                        path = osp.join(work, name)
                        if osp.isdir(path):
                            shutil.rmtree(path)
                        elif osp.exists(path):
                            os.remove(path)
                else:
                    self.logger.info(f'{run}: {why}; {work} is made afresh')
                    shutil.rmtree(work)
            write_manifest(manifest, key, 'started', parts)
            self.train_and_refine(run, work, options,
                                  (train_manifest, train_key, train_parts))
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


def draw_fig4(out_dir: str, names: List[str], seed: int,
              logger) -> Optional[str]:
    """beta2 of every setting (one seed) in one panel, as a PNG."""
    series = {}
    for name in names:
        beta2 = run_scalars(
            osp.join(out_dir, name, f'seed{seed}'), ('beta2', ))
        if 'beta2' in beta2:
            series[name] = beta2['beta2']
        else:
            logger.warning(f'fig4: no beta2 logged by {name}/seed{seed}')
    if not series:
        logger.warning('fig4: no logged beta2 to draw')
        return None
    save_dir = osp.join(out_dir, 'fig4')
    path = add_local_image(
        save_dir, 'fig4_beta2',
        draw_overlaid_curves(
            series,
            title=f'beta2 during CyCSNet training (seed {seed})',
            ylabel='beta2'), 'mmcyc_ablate_dcfs_fig4')
    logger.info(f'fig4: {path}')
    return path


def ablate_dcfs(config: str,
                cam_checkpoint: str,
                cam_dir: str,
                out_dir: str,
                settings: Sequence[str] = DEFAULT_SETTINGS,
                seeds: Sequence[int] = (0, ),
                num_refs: int = 16,
                data_root: Optional[str] = None,
                workers: Optional[int] = None,
                cfg_options: Sequence[str] = ()) -> dict:
    """Run the DCFS ablation (Table 5) and draw Fig. 4.

    Args:
        config (str): CyCSNet (stage 2) config.
        cam_checkpoint (str): Trained stage-1 classifier checkpoint.
        cam_dir (str): Stage-1 CAMs of every train_aug image.
        out_dir (str): Where the runs, ``table5.md`` / ``table5.json``,
            ``fig4/`` and the log go.
        settings (Sequence[str]): ``fixed<v>``, ``dynamic``, ``momentum``,
            ``momentum_selected`` (:func:`parse_setting`).
        seeds (Sequence[int]): Training seeds. Defaults to (0, ).
        num_refs (int): N of the refinement. Defaults to 16.
        data_root (str, optional): Dataset folder for every dataloader.
        workers (int, optional): ``refine_cam.py``'s dataloader workers.
        cfg_options (Sequence[str]): ``KEY=VALUE`` overrides for both tools,
            before each run's own.

    Returns:
        dict: What ``table5.json`` holds.
    """
    parsed = {name: parse_setting(name) for name in settings}
    seeds = list(seeds)
    os.makedirs(out_dir, exist_ok=True)
    logger = MMLogger.get_instance(
        'mmcyc_ablate_dcfs',
        log_file=osp.join(out_dir, 'ablate_dcfs.log'),
        file_mode='a')
    opts = SimpleNamespace(
        config=config, cam_checkpoint=cam_checkpoint, cam_dir=cam_dir,
        out_dir=out_dir, num_refs=num_refs, data_root=data_root,
        workers=workers, cfg_options=list(cfg_options))
    ablation = Ablation(opts, logger)
    logger.info(f'DCFS ablation of {config}: settings {list(parsed)}, '
                f'seeds {seeds}, N = {num_refs}')
    rows = []
    for name, setting in parsed.items():
        runs = [ablation.run(name, setting, seed) for seed in seeds]
        rows.append(summarise(name, setting, ablation.kappa, runs))
    fig4 = draw_fig4(out_dir, list(parsed), seeds[0], logger)
    table = markdown(rows)
    result = dict(
        config=config,
        cam_checkpoint=cam_checkpoint,
        cam_dir=cam_dir,
        num_refs=num_refs,
        split=SPLIT,
        bank_split=BANK_SPLIT,
        seeds=seeds,
        std=STD,
        fig4=fig4,
        settings=rows)
    with open(osp.join(out_dir, 'table5.md'), 'w') as f:
        f.write(table)
    with open(osp.join(out_dir, 'table5.json'), 'w') as f:
        json.dump(result, f, indent=2)
    logger.info('Table 5 (mIoU of the refined train CAMs; std: ' + STD +
                ')\n' + table)
    return result
