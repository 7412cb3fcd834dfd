# Copyright (c) mmcyc contributors. All rights reserved.
"""The main job's stage graph and its bookkeeping: which stages read which,
the pipeline config's schema, each stage's manifest key, and how a stage's
tools run as child processes (the stages themselves are
:class:`~mmcyc.apis.pipeline_stages.Pipeline`'s methods)."""
import os
import os.path as osp
import sys
from typing import List, Sequence

from mmengine.config import Config

from mmcyc.utils.child_process import run_children
from mmcyc.utils.config_options import data_root_options
from mmcyc.utils.manifest import (config_digest, describe_mismatch, make_key,
                                  manifest_matches, read_manifest,
                                  write_manifest)

# the checkout the stages' tools and configs are taken from (relative stage
# config paths are relative to it)
PROJECT_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

STAGES = ('data', 'cam_train', 'cam_infer', 'cyc_train', 'corr', 'refine',
          'aff_train', 'rw', 'seg')
# independent runs of stages, run concurrently (each lane's stages in order)
LANES = (('cyc_train', 'corr', 'refine'), ('aff_train', ))
# provenance: the stages whose outputs each stage reads, and the pipeline
# config entries that set it; a stage's key (WORK/manifests/<stage>.json)
# is made of these, its stage config as resolved, seed and data root, and
# its inputs' keys, so a change anywhere upstream remakes what follows
STAGE_INPUTS = {
    'data': (),
    'cam_train': ('data', ),
    'cam_infer': ('cam_train', ),
    'cyc_train': ('cam_train', ),
    'corr': ('cyc_train', 'cam_infer'),
    'refine': ('cyc_train', 'cam_infer'),
    'aff_train': ('cam_infer', ),
    'rw': ('aff_train', 'refine'),
    'seg': ('rw', ),
}
STAGE_ENTRIES = {
    'data': ('data', ),
    'cam_train': ('cam', ),
    'cam_infer': ('cam', 'lpcam'),
    'cyc_train': ('cyc', ),
    'corr': ('cyc', ),
    'refine': ('cyc', 'refine'),
    'aff_train': ('aff', ),
    'rw': ('aff', ),
    'seg': ('seg', ),
}
# pseudo-mask folder (WORK/pseudo_masks/<name>) -> its results.json row
# (with seg.tta, the multi-scale + flip score is that row + '_tta')
SEG_ROWS = {'rw_cyc': 'seg_val', 'rw': 'seg_val_rw'}


# what a pipeline config must hold: entry -> (required keys, optional keys)
CONFIG_SCHEMA = {
    'data': ({'root'}, {'generator'}),
    'cam': ({'config'}, set()),
    'cyc': ({'config'}, set()),
    'refine': ({'num_refs', 'num_refs_rw'}, set()),
    'aff': ({'config'}, set()),
    'seg': ({'config'}, {'pseudo_masks', 'tta'}),
    # optional: LPCAM maps (from the stage-1 classifier and its CAMs of
    # ``split``) replace the CAMs that every later stage reads
    'lpcam': ({'config'}, {'split'}),
}
OPTIONAL_ENTRIES = ('lpcam', )
# the CAM source a stage-1 model type gives (the row label of results.md)
SOURCE_NAMES = {'CAMClassifier': 'CAM', 'SSENetClassifier': 'SSENet'}


def check_pipeline_config(cfg: Config) -> None:
    """Refuse a pipeline config with a missing, unknown or misspelled entry.

    Checked before any stage runs, so that a typo does not surface after
    the first trainings. Stage configs must exist; ``seg.pseudo_masks``
    must name rows the pipeline writes.

    Raises:
        ValueError: Naming the config file and the offending key.
    """
    source = cfg.filename
    unknown = sorted(set(cfg.keys()) - set(CONFIG_SCHEMA))
    if unknown:
        raise ValueError(f'{source}: unknown entries {unknown}; a pipeline '
                         f'config has {sorted(CONFIG_SCHEMA)}')
    for entry, (required, optional) in CONFIG_SCHEMA.items():
        value = cfg.get(entry, None)
        if value is None and entry in OPTIONAL_ENTRIES:
            continue
        if not isinstance(value, dict):
            raise ValueError(f'{source}: entry {entry!r} is missing (expected '
                             f'a dict with {sorted(required)})')
        missing = sorted(required - set(value))
        extra = sorted(set(value) - required - optional)
        if missing or extra:
            raise ValueError(
                f'{source}: {entry} has missing keys {missing} and unknown '
                f'keys {extra}; expected {sorted(required)} and optionally '
                f'{sorted(optional)}')
        config = value.get('config')
        if config is not None:
            path = config if osp.isabs(config) else osp.join(
                PROJECT_ROOT, config)
            if not osp.isfile(path):
                raise ValueError(f'{source}: {entry}.config {config} is not '
                                 f'a file')
    names = cfg.seg.get('pseudo_masks', ('rw_cyc', ))
    wrong = [name for name in names if name not in SEG_ROWS]
    if wrong:
        raise ValueError(f'{source}: seg.pseudo_masks names {wrong}; '
                         f'expected some of {sorted(SEG_ROWS)}')
    for key in ('num_refs', 'num_refs_rw'):
        if not isinstance(cfg.refine[key], int) or cfg.refine[key] < 0:
            raise ValueError(f'{source}: refine.{key} must be an integer >= '
                             f'0, got {cfg.refine[key]!r}')


class StageRunner:
    """Runs the main job's stages under ``work_dir``, keeping their manifests.

    A stage is a method of a subclass (:class:`Pipeline`), named as in
    :data:`STAGES`, taking ``force``; this class gives each its key (what
    its outputs are made from), skips it when it is done with that key,
    and runs the tools it calls as child processes with the CPU threads
    shared out.
    """

    def __init__(self,
                 cfg: Config,
                 work_dir: str,
                 data_root: str,
                 logger,
                 seed: int = None):
        self.cfg = cfg
        self.seed = seed
        self.work_dir = work_dir
        self.data_root = data_root
        self.logger = logger
        # stage -> key and its parts, computed once its inputs are done
        self._keys, self._parts = {}, {}
        # config file -> Config, read once a run (as the keys are)
        self._configs = {}

    # -------------------------------------------------------------- paths
    def path(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    # --------------------------------------------------------- provenance
    def manifest_path(self, stage: str) -> str:
        return self.path('manifests', f'{stage}.json')

    def stage_parts(self, stage: str) -> dict:
        """What a stage's output is made from (its key's parts).

        Raises:
            RuntimeError: If a stage it reads is not done with the key it
                would have now (``--only`` before its inputs).
        """
        upstream = {}
        for name in STAGE_INPUTS[stage]:
            path, key = self.manifest_path(name), self.stage_key(name)
            if not manifest_matches(path, key):
                why = describe_mismatch(path, key, self._parts[name])
                raise RuntimeError(
                    f'stage {stage} reads the outputs of {name}, which is '
                    f'not done with the current inputs ({why}); run it first')
            upstream[name] = key
        names = [e for e in STAGE_ENTRIES[stage] if e in self.cfg]
        entries = {e: self.cfg[e].to_dict() for e in names}
        configs = {
            e: config_digest(self.loaded_config(self.stage_config(e)))
            for e in names if 'config' in self.cfg[e]
        }
        return dict(stage=stage, seed=self.seed, data_root=self.data_root,
                    entries=entries, configs=configs, inputs=upstream)

    def stage_key(self, stage: str) -> str:
        """The key of a stage's outputs (its parts computed once a run)."""
        if stage not in self._keys:
            parts = self.stage_parts(stage)
            self._parts[stage] = parts
            self._keys[stage] = make_key(parts)
        return self._keys[stage]

    def stage_done(self, stage: str) -> bool:
        """Whether a stage's manifest is 'done' with its current key."""
        try:
            key = self.stage_key(stage)
        except RuntimeError:
            return False
        return manifest_matches(self.manifest_path(stage), key)

    def run_stage(self, stage: str, forced: bool) -> None:
        """Run a stage unless its outputs are done with its current key.

        Outputs made from other inputs (another key), or without a manifest
        (an older mmcyc), are removed and made afresh; a stage left
        'started' with the current key continues from what it left (a
        training resumes). ``data`` checks its own meta instead (a dataset
        is regenerated only when its arguments differ).
        """
        path = self.manifest_path(stage)
        key = self.stage_key(stage)
        parts = self._parts[stage]
        manifest = read_manifest(path)
        same_key = manifest is not None and manifest.get('key') == key
        force = forced
        # data checks its own meta every time (it may be changed by hand)
        if stage != 'data' and not forced:
            if same_key and manifest['state'] == 'done':
                self.logger.info(f'{stage}: done with the current inputs '
                                 f'(manifest {key}), skipped')
                return
            if not same_key:  # 'started' with this key: resumed instead
                why = describe_mismatch(path, key, parts)
                self.logger.info(f'{stage}: {why}: its outputs are made '
                                 'afresh')
                force = True
        write_manifest(path, key, 'started', parts)
        getattr(self, stage)(force)
        write_manifest(path, key, 'done', parts)

    # -------------------------------------------------------------- paths
    def stage_config(self, name: str) -> str:
        config = self.cfg[name]['config']
        return config if osp.isabs(config) else osp.join(PROJECT_ROOT, config)

    def loaded_config(self, config: str) -> Config:
        """A stage config as read once in this run (do not modify it).

        A run reads each config file once, as it computes each key once:
        with ``mmseg::`` bases ``Config.fromfile`` parses mmseg's 53 model
        metafiles per base (1.5 s a read of the stage-5 config on a 2-core
        AMD EPYC), and the stage-5 step read its config a dozen times.
        """
        if config not in self._configs:
            self._configs[config] = Config.fromfile(config)
        return self._configs[config]

    def data_options(self, config: str):
        """--cfg-options pointing every dataloader of a config at the data."""
        return data_root_options(self.loaded_config(config), self.data_root)

    @staticmethod
    def tool_cmd(tool: str, *args: str) -> List[str]:
        """The command line of one of the repository's tools."""
        return [sys.executable, osp.join(PROJECT_ROOT, 'tools', tool), *args]

    def run_jobs(self,
                 jobs: Sequence[Sequence[List[str]]],
                 grace_s: float = 10.0) -> None:
        """Run independent jobs (each a list of commands) concurrently.

        The CPU threads are shared out: each of the n jobs gets
        ``OMP_NUM_THREADS`` = threads // n (at least 1), where threads is
        the caller's ``OMP_NUM_THREADS`` or else the CPUs this process may
        use. On 2 cores two 1-thread trainings of the stage-5 FCN ran 1.9x
        faster than the same two one after the other on 2 threads (machine
        C, README).
        """
        jobs = [list(job) for job in jobs if job]
        if not jobs:
            return
        threads = int(os.environ.get('OMP_NUM_THREADS', 0)) or len(
            os.sched_getaffinity(0))
        env = dict(os.environ, PYTHONPATH=PROJECT_ROOT + os.pathsep +
                   os.environ.get('PYTHONPATH', ''))
        if len(jobs) > 1:
            env['OMP_NUM_THREADS'] = str(max(1, threads // len(jobs)))
            env['MKL_NUM_THREADS'] = env['OMP_NUM_THREADS']
        for j, job in enumerate(jobs):
            for cmd in job:
                prefix = f'[job {j + 1}/{len(jobs)}] ' if len(jobs) > 1 else ''
                self.logger.info(f'{prefix}$ ' + ' '.join(cmd))
        run_children(jobs, env=env, grace_s=grace_s)

    def run_tool(self, tool: str, *args: str) -> None:
        self.run_jobs([[self.tool_cmd(tool, *args)]])
