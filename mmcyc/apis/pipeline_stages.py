# Copyright (c) mmcyc contributors. All rights reserved.
"""The main job's stages: what each runs, reads and writes, and when it is
done (``tools/run_pipeline.py`` drives them through :func:`run_pipeline`).

Every stage runs the project's own tool for it (``tools/train.py``,
``tools/test.py``, ``tools/refine_cam.py``, ...) as a child process, as a
user would, with its CPU threads; its outputs go under the work folder and
carry a manifest (``WORK_DIR/manifests/<stage>.json``) whose key names what
they were made from.
"""
import glob
import json
import os
import os.path as osp
import shutil
import sys
from typing import List, Sequence

from mmengine.config import Config

from mmcyc.apis.part_recall import evaluate_part_recall, save_part_recall
from mmcyc.datasets import read_image_names
from mmcyc.datasets.synthvoc import PART_DIR, is_complete, make_synthvoc
from mmcyc.fileio import is_complete_checkpoint, repair_resume_point
from mmcyc.utils.child_process import run_children
from mmcyc.utils.config_options import (data_root_options,
                                        final_checkpoint_name,
                                        transform_options)
from mmcyc.utils.manifest import (config_digest, describe_mismatch, make_key,
                                  manifest_matches, read_manifest,
                                  write_manifest)
from mmcyc.visualization import add_local_image, draw_curves, read_scalars

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
SEG_ROWS = {'rw_cyc': 'seg_val', 'rw': 'seg_val_rw'}


# what a pipeline config must hold: entry -> (required keys, optional keys)
CONFIG_SCHEMA = {
    'data': ({'root'}, {'generator'}),
    'cam': ({'config'}, set()),
    'cyc': ({'config'}, set()),
    'refine': ({'num_refs', 'num_refs_rw'}, set()),
    'aff': ({'config'}, set()),
    'seg': ({'config'}, {'pseudo_masks'}),
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


class Pipeline:
    """The stages of the pipeline with their outputs under ``work_dir``."""

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
            e: config_digest(self.stage_config(e))
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

    def data_options(self, config: str):
        """--cfg-options pointing every dataloader of a config at the data."""
        return data_root_options(config, self.data_root)

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

    # ------------------------------------------------------------- stages
    def data(self, force: bool) -> None:
        args = dict(self.cfg.data.get('generator', {}))
        if self.seed is not None:
            args['seed'] = self.seed
        if not force and is_complete(self.data_root, **args):
            self.logger.info(f'data: {self.data_root} is complete, skipped')
            return
        self.logger.info(f'data: generating the synthetic dataset in '
                         f'{self.data_root}')
        make_synthvoc(self.data_root, **args)

    def final_checkpoint(self, stage: str, work: str = None) -> str:
        """The last checkpoint of an epoch- or iteration-based training."""
        name = final_checkpoint_name(self.stage_config(stage))
        return osp.join(work or self.path(stage), name)

    def cam_checkpoint(self) -> str:
        return self.final_checkpoint('cam')

    def train_stage(self,
                    stage: str,
                    force: bool,
                    *options: str,
                    work: str = None) -> None:
        """Train a stage's config unless its final checkpoint exists."""
        self.run_jobs([self.train_cmds(stage, force, *options, work=work)])

    def train_cmds(self,
                   stage: str,
                   force: bool,
                   *options: str,
                   work: str = None) -> List[List[str]]:
        """The training command of a stage, none if its final checkpoint
        exists (a forced stage's work folder is removed first)."""
        work = work or self.path(stage)
        if force and osp.isdir(work):
            shutil.rmtree(work)
        final = self.final_checkpoint(stage, work)
        if is_complete_checkpoint(final):
            self.logger.info(f'{stage}: final checkpoint exists in {work}, '
                             'skipped')
            return []
        if osp.isfile(final):  # cut short by a kill: not a finished stage
            self.logger.warning(f'{stage}: {final} is not a whole checkpoint'
                                ' (cut short while written); removed')
            os.remove(final)
        resume = ['--resume'] if repair_resume_point(work) else []
        config = self.stage_config(stage)
        seed = [f'randomness.seed={self.seed}'] if self.seed is not None \
            else []
        return [
            self.tool_cmd('train.py', config, '--work-dir', work, *resume,
                          '--cfg-options', *self.data_options(config), *seed,
                          *options)
        ]

    def scored(self, metrics: str, force: bool, done: str) -> bool:
        """Whether a scoring step is done: its metrics file exists.

        A forced stage removes the file first; a done step is logged as
        ``'<done>, skipped'``.
        """
        if force and osp.isfile(metrics):
            os.remove(metrics)
        if osp.isfile(metrics):
            self.logger.info(f'{done}, skipped')
            return True
        return False

    def cam_train(self, force: bool) -> None:
        self.train_stage('cam', force)

    def part_recall(self, cams: str, force: bool) -> None:
        """CAM recall on salient parts, weak parts and bodies of train.

        Only for data with SynthVOC part maps (``SynthParts/``); written to
        ``metrics/recall_<cams>_train.json``.
        """
        if not osp.isdir(osp.join(self.data_root, PART_DIR)):
            return
        metrics = self.path('metrics', f'recall_{cams}_train.json')
        if self.scored(metrics, force, f'recall of {cams} on train done'):
            return
        # in this process: a tool would spend longer starting than counting
        names = read_image_names(
            osp.join(self.data_root, 'ImageSets', 'Segmentation',
                     'train.txt'))
        result = evaluate_part_recall(self.data_root, self.path('cams', cams),
                                      names)
        save_part_recall(result, metrics)
        self.logger.info(
            f'recall of {cams} on train: ' + ', '.join(
                f'{k} {result[k]:.1f} %' for k in ('salient', 'weak', 'body')))

    def cam_infer(self, force: bool) -> None:
        """Maps of train, val and train_aug in ``cams/cam``, scored.

        With an ``lpcam`` entry the stage-1 CAMs go to ``cams/cam_base``
        (train scored as ``cam_base``; ``lpcam.split`` the images the
        prototypes are fitted on), ``tools/fit_lpcam.py`` fits the
        prototypes (``lpcam/lpcam.pth``), and the LPCAM maps take the CAMs'
        place in ``cams/cam``: every later stage reads them unchanged.
        """
        cam_dir = self.path('cams', 'cam')
        lpcam = self.cfg.get('lpcam', None)
        if force:  # CAMs of an older checkpoint must not be read back
            for name in ('cam', 'cam_base'):
                shutil.rmtree(self.path('cams', name), ignore_errors=True)
            shutil.rmtree(self.path('lpcam'), ignore_errors=True)
        config, checkpoint = self.stage_config('cam'), self.cam_checkpoint()
        if lpcam is not None:
            fit_split = lpcam.get('split', 'train')
            base_dir = self.path('cams', 'cam_base')
            # train scored first: its files are read back by train_aug
            splits = ['train'] + [fit_split] * (fit_split != 'train')
            self.run_jobs([[
                self.infer_cmd(config, checkpoint, base_dir, split,
                               'cam_base') for split in splits
                if not self.scored(
                    self.path('metrics', f'cam_base_{split}.json'), force,
                    f'cam_infer: stage-1 CAMs of {split} scored')
            ]])
            lpcam_checkpoint = self.path('lpcam', 'lpcam.pth')
            if not osp.isfile(lpcam_checkpoint):
                lpcam_config = self.stage_config('lpcam')
                self.run_tool(
                    'fit_lpcam.py', lpcam_config, checkpoint, '--cam-dir',
                    base_dir, '--split',
                    f'ImageSets/Segmentation/{fit_split}.txt', '--out',
                    lpcam_checkpoint, '--cfg-options',
                    *self.data_options(lpcam_config))
            config, checkpoint = self.stage_config('lpcam'), lpcam_checkpoint
        # val concurrently with train then train_aug (whose train images
        # are read back); their image sets are disjoint
        jobs = [[], []]
        for job, split in ((0, 'train'), (1, 'val'), (0, 'train_aug')):
            if self.scored(self.path('metrics', f'cam_{split}.json'), force,
                           f'cam_infer: {split} scored'):
                continue
            jobs[job].append(
                self.infer_cmd(config, checkpoint, cam_dir, split, 'cam'))
        self.run_jobs(jobs)
        self.part_recall('cam', force)

    def infer_cmd(self, config: str, checkpoint: str, cam_dir: str,
                  split: str, name: str) -> List[str]:
        """``tools/test.py`` writing a split's maps and scoring them."""
        return self.tool_cmd(
            'test.py', config, checkpoint, '--work-dir',
            self.path(f'{name}_test', split), '--cam-dir', cam_dir,
            '--split', f'ImageSets/Segmentation/{split}.txt',
            '--metrics-json', self.path('metrics', f'{name}_{split}.json'),
            '--cfg-options', *self.data_options(config))

    def source_name(self) -> str:
        """What the maps of ``cams/cam`` are (the results' row label)."""
        if 'lpcam' in self.cfg:
            return 'LPCAM'
        model = Config.fromfile(self.stage_config('cam')).model
        name = SOURCE_NAMES.get(model.type, model.type)
        backbone = model.get('backbone', {}).get('type', 'ResNet38')
        return name if backbone == 'ResNet38' else f'{name} ({backbone})'

    def cyc_train(self, force: bool) -> None:
        self.train_stage(
            'cyc', force,
            f'model.cam_classifier_checkpoint={self.cam_checkpoint()}')
        self.draw_cyc_curves()

    def draw_cyc_curves(self) -> None:
        """beta2 (Fig. 4), L_cyc and |V^sel| over training, as a PNG."""
        keys = ('beta2', 'loss_cyc', 'cyc_num_selected')
        series = {}
        for path in sorted(
                glob.glob(self.path('cyc', '*', 'vis_data', 'scalars.json'))):
            for key, (steps, values) in read_scalars(path, keys).items():
                series.setdefault(key, ([], []))
                series[key][0].extend(steps)
                series[key][1].extend(values)
        if not series:
            self.logger.warning('cyc_train: no logged scalars to draw')
            return
        add_local_image(self.path('cyc', 'curves'), 'cyc_training_curves',
                        draw_curves(series, 'CyCSNet training'),
                        'mmcyc_pipeline_curves')
        stats = {
            f'{key}_{where}': values[index]
            for key, (_, values) in series.items()
            for where, index in (('first', 0), ('last', -1))
        }
        with open(self.path('cyc', 'curves', 'stats.json'), 'w') as f:
            json.dump(stats, f, indent=2)
        self.logger.info(
            'cyc_train: curves in '
            f'{self.path("cyc", "curves", "vis_data", "vis_image")}; {stats}')

    def corr(self, force: bool) -> None:
        """Part-correspondence accuracy of F, before and after stage 2.

        ``metrics/corr_cls.json``: F's initialisation (the stage-1
        classifier's backbone); ``metrics/corr_cyc.json``: the trained
        CyCSNet; the same pairs of train images (4 targets per source,
        seed 0). Only for data with SynthVOC part maps. Fig. 3 drawings of
        4 source points go to ``WORK/corr/<features>``.
        """
        if not osp.isdir(osp.join(self.data_root, PART_DIR)):
            self.logger.info('corr: no part maps in the data, skipped')
            return
        config = self.stage_config('cyc')
        jobs = []  # the two feature sets concurrently
        for features in ('cls', 'cyc'):
            metrics = self.path('metrics', f'corr_{features}.json')
            if self.scored(metrics, force, f'corr: {features} scored'):
                continue
            weights = (['-', '--init-from-classifier', self.cam_checkpoint()]
                       if features == 'cls' else
                       [self.final_checkpoint('cyc')])
            jobs.append([self.tool_cmd(
                'analysis_tools/correspondence.py', config, *weights,
                '--cam-dir', self.path('cams', 'cam'), '--split',
                'ImageSets/Segmentation/train.txt', '--out', metrics,
                '--draw', '4', '--vis-dir', self.path('corr', features),
                '--cfg-options', *self.data_options(config))])
        self.run_jobs(jobs)

    def refine(self, force: bool) -> None:
        """Refine the stage-1 CAMs with the paper's two settings of N.

        ``cams/cyc``: N = ``refine.num_refs`` (16, Table 1 without random
        walk) for train, scored as ``cam_cyc``. ``cams/cyc_rw``: N =
        ``refine.num_refs_rw`` (64, Table 1 with random walk) for train
        (scored as ``cam_cyc_rw_n``), then the rest of train_aug (its train
        targets are skipped: their files exist); stage 4 walks these and
        stage 5 trains on them. The two share one feature bank (it does not
        depend on N). ``cams/eq14_cls``: the ablation ``cam_eq14_cls``,
        Eq. 14 with N = 16 and F = the classifier's backbone (F before
        stage 2), with its own bank.
        """
        cyc = [self.final_checkpoint('cyc')]
        cls = ['-', '--init-from-classifier', self.cam_checkpoint()]
        runs = (('cyc', cyc, self.cfg.refine.num_refs, ('train', )),
                ('cyc_rw', cyc, self.cfg.refine.num_refs_rw, ('train',
                                                              'train_aug')),
                ('eq14_cls', cls, self.cfg.refine.num_refs, ('train', )))
        banks = dict(cyc=self.path('cams', 'feature_bank.pth'),
                     eq14_cls=self.path('cams', 'feature_bank_cls.pth'))
        if force:
            for name, _, _, _ in runs:
                shutil.rmtree(self.path('cams', name), ignore_errors=True)
            for bank in banks.values():
                if osp.isfile(bank):
                    os.remove(bank)
        config = self.stage_config('cyc')
        seed = [f'refiner.seed={self.seed}'] if self.seed is not None else []
        # one job a feature bank: the runs sharing a bank in order (the
        # first builds it), the jobs concurrently
        jobs = {}
        for name, weights, num_refs, splits in runs:
            bank = banks.get(name, banks['cyc'])
            for split in splits:
                metrics = self.path('metrics', f'{name}_{split}.json')
                if self.scored(metrics, force,
                               f'refine: {split} refined and scored'):
                    continue
                jobs.setdefault(bank, []).append(self.tool_cmd(
                    'refine_cam.py', config, *weights, '--cam-dir',
                    self.path('cams', 'cam'), '--out-dir',
                    self.path('cams', name), '--split',
                    f'ImageSets/Segmentation/{split}.txt', '--bank-split',
                    'ImageSets/Segmentation/train_aug.txt', '--bank-file',
                    bank, '--num-refs', str(num_refs), '--metrics-json',
                    metrics, '--cfg-options', *self.data_options(config),
                    *seed))
        self.run_jobs(list(jobs.values()))
        for name, _, _, _ in runs:
            self.part_recall(name, force)

    def aff_train(self, force: bool) -> None:
        cams = self.path('cams', 'cam')
        crf_cache = self.path('cams', 'cam_crf')  # CRF'd labels of those CAMs
        if force:
            shutil.rmtree(crf_cache, ignore_errors=True)
        self.train_stage(
            'aff', force,
            f'model.backbone.init_cfg.checkpoint={self.cam_checkpoint()}',
            f'train_dataloader.dataset.pipeline.1.cam_dir={cams}',
            f'train_dataloader.dataset.pipeline.1.crf_cache_dir={crf_cache}',
            *self.walked_cams(cams))

    def walked_cams(self, cams: str) -> List[str]:
        """Options pointing AffinityNet's val / test walk at a CAM folder."""
        return transform_options(self.stage_config('aff'), 'LoadCAMFromFile',
                                 ('val_dataloader', 'test_dataloader'),
                                 cam_dir=cams)

    def rw(self, force: bool) -> None:
        """Walk the plain and the refined CAMs into pseudo masks.

        train is walked and scored first (the ``cam_rw*`` rows), then
        train_aug, whose masks stage 5 trains on; the second run reads the
        masks of train back from the folder (``tools/test.py
        --pseudo-mask-dir`` resumes) and walks only the rest.
        """
        config = self.stage_config('aff')
        jobs = []
        for name, cams in (('rw', 'cam'), ('rw_cyc', 'cyc_rw')):
            masks = self.path('pseudo_masks', name)
            if force:
                shutil.rmtree(masks, ignore_errors=True)
            job = []
            for split in ('train', 'train_aug'):
                metrics = self.path('metrics', f'{name}_{split}.json')
                if self.scored(metrics, force,
                               f'rw: {name} of {split} scored'):
                    continue
                job.append(self.tool_cmd(
                    'test.py', config, self.final_checkpoint('aff'),
                    '--work-dir', self.path('aff_test', name), '--split',
                    f'ImageSets/Segmentation/{split}.txt',
                    '--pseudo-mask-dir', masks, '--metrics-json', metrics,
                    '--cfg-options', *self.data_options(config),
                    *self.walked_cams(self.path('cams', cams))))
            jobs.append(job)
        self.run_jobs(jobs)  # the two walks concurrently

    def seg(self, force: bool) -> None:
        """Train the stage-5 model on each pseudo-mask folder, score val."""
        config = self.stage_config('seg')
        if force:  # models and scores of folders no longer listed go too
            shutil.rmtree(self.path('seg'), ignore_errors=True)
            for metrics in glob.glob(self.path('metrics', 'seg_*_val.json')):
                os.remove(metrics)
        jobs = []
        for name in self.cfg.seg.get('pseudo_masks', ('rw_cyc', )):
            if name not in SEG_ROWS:
                raise ValueError(
                    f'seg.pseudo_masks in {self.cfg.filename} names {name!r}:'
                    f' expected some of {sorted(SEG_ROWS)}')
            work = self.path('seg', name)
            metrics = self.path('metrics', f'seg_{name}_val.json')
            if self.scored(metrics, force, f'seg: model on {name} scored'):
                continue
            masks = (f'train_dataloader.dataset.data_prefix.seg_map_path='
                     f'{self.path("pseudo_masks", name)}')
            jobs.append(
                self.train_cmds('seg', force, masks, work=work) + [
                    self.tool_cmd('test.py', config,
                                  self.final_checkpoint('seg', work),
                                  '--work-dir', work, '--metrics-json',
                                  metrics, '--cfg-options',
                                  *self.data_options(config), masks)
                ])
        self.run_jobs(jobs)  # one model a folder, trained concurrently

    # ------------------------------------------------------------ results
    def collect(self) -> dict:
        rows = {}
        for key, name in (('cam', 'cam_train'), ('cam_val', 'cam_val'),
                          ('cam_base', 'cam_base_train')):
            path = self.path('metrics', f'{name}.json')
            if osp.isfile(path):
                with open(path) as f:
                    metrics = json.load(f)
                rows[key] = metrics['mIoU']
                rows[key + '_sweep_best'] = metrics['sweep/best_mIoU']
                rows[key + '_sweep_bg'] = metrics['sweep/best_bg_score']
        names = [('cam_cyc', 'cyc_train'), ('cam_cyc_rw_n', 'cyc_rw_train'),
                 ('cam_eq14_cls', 'eq14_cls_train'),
                 ('cam_rw', 'rw_train'),
                 ('cam_rw_cyc', 'rw_cyc_train'),
                 ('cam_rw_train_aug', 'rw_train_aug'),
                 ('cam_rw_cyc_train_aug', 'rw_cyc_train_aug')]
        names += [(row, f'seg_{name}_val') for name, row in SEG_ROWS.items()]
        for key, name in names:
            path = self.path('metrics', f'{name}.json')
            if osp.isfile(path):
                with open(path) as f:
                    rows[key] = json.load(f)['mIoU']
        for features in ('cls', 'cyc'):
            path = self.path('metrics', f'corr_{features}.json')
            if osp.isfile(path):
                with open(path) as f:
                    rows[f'corr_acc_{features}'] = json.load(f)['corr_acc']
        for cams in ('cam', 'cyc', 'cyc_rw', 'eq14_cls'):
            path = self.path('metrics', f'recall_{cams}_train.json')
            if osp.isfile(path):
                with open(path) as f:
                    recall = json.load(f)
                for region in ('salient', 'weak', 'body'):
                    rows[f'recall_{cams}_{region}'] = recall[region]
        return rows
