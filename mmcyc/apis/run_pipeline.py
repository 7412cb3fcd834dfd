# Copyright (c) mmcyc contributors. All rights reserved.
"""The main job as a library step: every stage of the pipeline, in order,
with the CyCSNet and AffinityNet lanes side by side."""
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import MMLogger

from mmcyc.utils.work_dir_lock import work_dir_lock

from .pipeline_results import write_results
from .pipeline_stages import Pipeline
from .stage_runner import LANES, PROJECT_ROOT, STAGES, check_pipeline_config


def remove_partial_files(work_dir: str) -> int:
    """Remove what killed writers left: ``atomic_open``'s temporary files.

    A process killed while writing through :func:`mmcyc.utils.atomic_open`
    leaves ``.<name>.<random>.tmp`` beside the file it did not finish (the
    file itself is never half-written). Called by the main job before any
    stage runs, when none of its own writers can be at work.

    Returns:
        int: How many files were removed.
    """
    removed = 0
    for folder, _, files in os.walk(work_dir):
        for name in files:
            if name.startswith('.') and name.endswith('.tmp'):
                os.remove(osp.join(folder, name))
                removed += 1
    return removed


def lane_cmd(entry: str, config: str, work_dir: str, data_root: str,
             lane: Sequence[str], seed: Optional[int] = None,
             from_stage: Optional[str] = None) -> List[str]:
    """The command that runs one lane: ``entry --only <lane>``."""
    cmd = [sys.executable, entry, '--config', config, '--work-dir',
           work_dir, '--data-root', data_root, '--only', *lane]
    if seed is not None:
        cmd += ['--seed', str(seed)]
    if from_stage:
        cmd += ['--from', from_stage]
    return cmd


def run_pipeline(config: str,
                 work_dir: str,
                 data_root: Optional[str] = None,
                 seed: Optional[int] = None,
                 from_stage: Optional[str] = None,
                 only: Optional[Sequence[str]] = None,
                 sequential: bool = False,
                 to_stage: Optional[str] = None,
                 entry: Optional[str] = None) -> Optional[dict]:
    """Run the main job: each stage unless it is done with its inputs.

    Args:
        config (str): A pipeline config (``configs/pipeline_synthvoc.py``):
            the dataset and each stage's config and settings.
        work_dir (str): Where every stage writes its outputs.
        data_root (str, optional): The dataset folder. Defaults to the
            config's ``data.root`` (``<root>_seed<S>`` with a seed), under
            the project's folder when relative.
        seed (int, optional): Seed of the dataset, the trainings and the
            sampling. Defaults to the configs' seeds (dataset seed 0).
        from_stage (str, optional): Rerun this stage and every later one.
        only (Sequence[str], optional): Run only these stages (a lane);
            the results are then not collected.
        sequential (bool): Run the lanes (stages 4-6 and 7) one after the
            other instead of side by side. Defaults to False.
        to_stage (str, optional): Stop after this stage; the rows measured
            so far are collected. A later run without it resumes from the
            stages done (e.g. ``to_stage='rw'`` leaves out stage 5, the
            longest). A stop within stages 4-6 leaves the AffinityNet lane
            out, and the CyCSNet lane then runs alone on every thread (as
            with ``sequential``): thread counts change the last digits of
            its rows (README, finding 6).
        entry (str, optional): The script that runs a lane when called
            with ``--only`` (the lanes are child processes). Defaults to
            ``tools/run_pipeline.py`` of the project.

    Returns:
        dict | None: The measured rows (also in ``work_dir/results.json``;
        with ``to_stage`` those of the stages run), None with ``only``.

    Raises:
        WorkDirBusyError: Another main job runs in ``work_dir`` (its lock
            ``work_dir/pipeline.lock``, :mod:`mmcyc.utils.work_dir_lock`).
    """
    cfg = Config.fromfile(config)
    check_pipeline_config(cfg)
    if from_stage is not None and from_stage not in STAGES:
        raise ValueError(f'from_stage must be one of {STAGES}, got '
                         f'{from_stage!r}')
    if to_stage is not None and to_stage not in STAGES:
        raise ValueError(f'to_stage must be one of {STAGES}, got '
                         f'{to_stage!r}')
    if (from_stage is not None and to_stage is not None
            and STAGES.index(to_stage) < STAGES.index(from_stage)):
        raise ValueError(f'to_stage {to_stage!r} comes before from_stage '
                         f'{from_stage!r}')
    wrong = [stage for stage in only or () if stage not in STAGES]
    if wrong:
        raise ValueError(f'only names unknown stages {wrong}; expected '
                         f'some of {STAGES}')
    entry = entry or osp.join(PROJECT_ROOT, 'tools', 'run_pipeline.py')
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    with work_dir_lock(work_dir):  # one main job per work folder
        return _run_stages(
            cfg, config=config, work_dir=work_dir, data_root=data_root,
            seed=seed, from_stage=from_stage, only=only,
            sequential=sequential, to_stage=to_stage, entry=entry)


def _run_stages(cfg: Config, *, config: str, work_dir: str,
                data_root: Optional[str], seed: Optional[int],
                from_stage: Optional[str], only: Optional[Sequence[str]],
                sequential: bool, to_stage: Optional[str],
                entry: str) -> Optional[dict]:
    """:func:`run_pipeline`'s stage loop, its arguments checked and its
    work folder locked."""
    root = cfg.data.root if seed is None else f'{cfg.data.root}_seed{seed}'
    data_root = osp.abspath(data_root or osp.join(PROJECT_ROOT, root))
    # appended to: a resumed run keeps the log of what it resumes, and the
    # lanes write to it at the same time
    logger = MMLogger.get_instance(
        'mmcyc_pipeline', log_file=osp.join(work_dir, 'pipeline.log'),
        file_mode='a')
    pipeline = Pipeline(cfg, work_dir, data_root, logger, seed)
    if not only:  # the lanes' parent: no writer of this job runs yet
        removed = remove_partial_files(work_dir)
        if removed:
            logger.info(f'removed {removed} temporary files of writers '
                        f'killed in an earlier run under {work_dir}')
    first_forced = STAGES.index(from_stage) if from_stage else None
    last = STAGES.index(to_stage) if to_stage else len(STAGES) - 1
    # the lanes cut at the last stage run; a lane left empty is not started
    run_lanes = [kept for kept in ([stage for stage in lane
                                    if STAGES.index(stage) <= last]
                                   for lane in LANES) if kept]
    lanes = {stage: lane for lane in run_lanes for stage in lane}
    start = time.time()
    for index, stage in enumerate(STAGES):
        if index > last:
            break
        if only and stage not in only:
            continue
        if not only and not sequential and stage in lanes:
            if stage != run_lanes[0][0]:
                continue  # ran in its lane
            # forced when any lane stage is at or after from_stage
            forced = first_forced is not None and any(
                STAGES.index(s) >= first_forced for s in lanes)
            if not forced and all(pipeline.stage_done(s) for s in lanes):
                logger.info(f'stages {", ".join(sorted(lanes))}: done with '
                            'the current inputs, skipped')
                continue
            logger.info(f'stages {", ".join(sorted(lanes))} in lanes: ' +
                        ' | '.join(' -> '.join(lane) for lane in run_lanes))
            stage_start = time.time()
            # the lanes stop their own tools on a signal: a longer grace
            pipeline.run_jobs(
                [[lane_cmd(entry, config, work_dir, data_root, lane, seed,
                           from_stage)] for lane in run_lanes],
                grace_s=20.0)
            logger.info(f'lanes done in {time.time() - stage_start:.0f} s')
            continue
        force = first_forced is not None and index >= first_forced
        logger.info(f'[{index + 1}/{len(STAGES)}] stage {stage}'
                    f'{" (forced)" if force else ""}')
        stage_start = time.time()
        pipeline.run_stage(stage, force)
        logger.info(f'[{index + 1}/{len(STAGES)}] stage {stage} done in '
                    f'{time.time() - stage_start:.0f} s')
    if only:
        return None
    rows = pipeline.collect(to_stage)
    table = write_results(rows, work_dir, pipeline.source_name())
    done = f'stopped after {to_stage}' if to_stage else 'pipeline done'
    logger.info(f'{done} in {time.time() - start:.0f} s; '
                f'results in {osp.join(work_dir, "results.json")}\n{table}')
    print(table)
    return rows
