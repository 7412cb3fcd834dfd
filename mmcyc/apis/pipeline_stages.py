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
from typing import Dict, List, Optional

from mmcyc.apis.part_recall import evaluate_part_recall, save_part_recall
from mmcyc.datasets import read_image_names
from mmcyc.datasets.synthvoc import PART_DIR, is_complete, make_synthvoc
from mmcyc.fileio import is_complete_checkpoint, repair_resume_point
from mmcyc.utils import atomic_open
from mmcyc.utils.config_options import final_checkpoint_name, transform_options
from mmcyc.visualization import add_local_image, draw_curves, read_scalars
from .stage_runner import SEG_ROWS, SOURCE_NAMES, STAGES, StageRunner


# a cfg option that keeps a training from validating (its loop validates
# from epoch or iteration val_begin on, the last one included)
NO_TRAINING_VALIDATION = f'train_cfg.val_begin={2**31 - 1}'


class Pipeline(StageRunner):
    """The stages of the main job, one method each, with their outputs
    under ``work_dir`` (see :class:`StageRunner` for how they run)."""

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
        name = final_checkpoint_name(
            self.loaded_config(self.stage_config(stage)))
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
        exists (a forced stage's work folder is removed first).

        The training does not validate (``train_cfg.val_begin`` past its
        end): the main job scores every trained model in a later step
        (``cam_infer``, ``rw``, ``seg``'s test), and the checkpoints are
        saved before a training's validation, so they are the same.
        """
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
                          NO_TRAINING_VALIDATION, *options)
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

    def split_names(self, split: str) -> List[str]:
        """The image names of the data's ``ImageSets/Segmentation/<split>``."""
        return read_image_names(
            osp.join(self.data_root, 'ImageSets', 'Segmentation',
                     f'{split}.txt'))

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
        names = self.split_names('train')
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
        # two jobs of about as many images: train then part 0 of the rest
        # of train_aug, val then part 1 (the image sets are disjoint; each
        # image's maps are computed alone, so the split changes no float)
        jobs = [[], []]
        splits = [(0, 'train', None), (1, 'val', None)]
        splits += [(part, f'train_aug_part{part}', path)
                   for part, path in self.train_aug_parts().items()]
        for job, split, path in splits:
            if self.scored(self.path('metrics', f'cam_{split}.json'), force,
                           f'cam_infer: {split} scored'):
                continue
            jobs[job].append(
                self.infer_cmd(config, checkpoint, cam_dir, split, 'cam',
                               path))
        self.run_jobs(jobs)
        self.part_recall('cam', force)

    def train_aug_parts(self) -> Dict[int, str]:
        """Split the train_aug images outside train in two list files.

        Sized so that train + part 0 and val + part 1 are about as many
        images (the two CAM-inference jobs then end together); written to
        ``WORK/cam_test/train_aug_part{0,1}.txt``, plain image names.

        Returns:
            dict[int, str]: The path of each non-empty part by its number
            (none when train_aug is train).
        """
        train, val = set(self.split_names('train')), self.split_names('val')
        rest = [
            name for name in self.split_names('train_aug')
            if name not in train
        ]
        first = min(max((len(rest) + len(val) - len(train)) // 2, 0),
                    len(rest))
        paths = {}
        for part, part_names in enumerate((rest[:first], rest[first:])):
            if not part_names:
                continue
            path = self.path('cam_test', f'train_aug_part{part}.txt')
            os.makedirs(osp.dirname(path), exist_ok=True)
            with atomic_open(path, 'w') as f:
                f.write(''.join(f'{name}\n' for name in part_names))
            paths[part] = path
        return paths

    def infer_cmd(self,
                  config: str,
                  checkpoint: str,
                  cam_dir: str,
                  split: str,
                  name: str,
                  split_file: str = None) -> List[str]:
        """``tools/test.py`` writing a split's maps and scoring them.

        ``split_file`` (an absolute list file) replaces the data's
        ``ImageSets/Segmentation/<split>.txt``.
        """
        return self.tool_cmd(
            'test.py', config, checkpoint, '--work-dir',
            self.path(f'{name}_test', split), '--cam-dir', cam_dir,
            '--split', split_file or f'ImageSets/Segmentation/{split}.txt',
            '--metrics-json', self.path('metrics', f'{name}_{split}.json'),
            '--cfg-options', *self.data_options(config))

    def source_name(self) -> str:
        """What the maps of ``cams/cam`` are (the results' row label)."""
        if 'lpcam' in self.cfg:
            return 'LPCAM'
        model = self.loaded_config(self.stage_config('cam')).model
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
        cyc, cls = self.refine_weights(), self.refine_weights(True)
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
        seed = self.refiner_seed_options()
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

    def refine_weights(self, classifier_features: bool = False
                       ) -> List[str]:
        """``tools/refine_cam.py``'s weight arguments: the trained CyCSNet,
        or F = the stage-1 classifier (the ``eq14_cls`` ablation)."""
        if classifier_features:
            return ['-', '--init-from-classifier', self.cam_checkpoint()]
        return [self.final_checkpoint('cyc')]

    def refiner_seed_options(self) -> List[str]:
        """``--cfg-options`` items giving ``tools/refine_cam.py`` the run's
        sampling seed (none without ``--seed``: the config's)."""
        return [f'refiner.seed={self.seed}'] if self.seed is not None else []

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
        return transform_options(
            self.loaded_config(self.stage_config('aff')), 'LoadCAMFromFile',
            ('val_dataloader', 'test_dataloader'), cam_dir=cams)

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
        """Train the stage-5 model on each pseudo-mask folder, score val
        (with ``seg.tta`` also multi-scale + flip)."""
        config = self.stage_config('seg')
        if force:  # models and scores of folders no longer listed go too
            shutil.rmtree(self.path('seg'), ignore_errors=True)
            for pattern in ('seg_*_val.json', 'seg_*_val_tta.json'):
                for metrics in glob.glob(self.path('metrics', pattern)):
                    os.remove(metrics)
        # val scored as the model predicts (one pass at the image's size)
        # and, with seg.tta, also with the stage config's tta_pipeline
        # (mmseg's multi-scale + flip test, tools/test.py --tta)
        tests = [('', [], 'scored')]
        if self.cfg.seg.get('tta', False):
            tests.append(('_tta', ['--tta'], 'scored with multi-scale + flip'))
        jobs = []
        for name in self.cfg.seg.get('pseudo_masks', ('rw_cyc', )):
            if name not in SEG_ROWS:
                raise ValueError(
                    f'seg.pseudo_masks in {self.cfg.filename} names {name!r}:'
                    f' expected some of {sorted(SEG_ROWS)}')
            work = self.path('seg', name)
            masks = (f'train_dataloader.dataset.data_prefix.seg_map_path='
                     f'{self.path("pseudo_masks", name)}')
            job = []
            for suffix, flags, what in tests:
                metrics = self.path('metrics', f'seg_{name}_val{suffix}.json')
                if self.scored(metrics, force, f'seg: model on {name} {what}'):
                    continue
                job.append(
                    self.tool_cmd('test.py', config,
                                  self.final_checkpoint('seg', work), *flags,
                                  '--work-dir', work, '--metrics-json',
                                  metrics, '--cfg-options',
                                  *self.data_options(config), masks))
            if job:
                jobs.append(
                    self.train_cmds('seg', force, masks, work=work) + job)
        self.run_jobs(jobs)  # one model a folder, trained concurrently

    # ------------------------------------------------------------ results
    def collect(self, to_stage: Optional[str] = None) -> dict:
        """The measured rows: every score file the stages have written.

        Args:
            to_stage (str, optional): Leave out the rows of the stages after
                it (a run stopped there: scores of later stages left by an
                earlier run need not match what it made). Defaults to
                None, every stage.

        Returns:
            dict: results.json's rows (mIoU and recalls in percent).
        """
        last = STAGES.index(to_stage) if to_stage else len(STAGES) - 1

        def load(stage: str, name: str) -> Optional[dict]:
            path = self.path('metrics', f'{name}.json')
            if STAGES.index(stage) > last or not osp.isfile(path):
                return None
            with open(path) as f:
                return json.load(f)

        rows = {}
        for key, name in (('cam', 'cam_train'), ('cam_val', 'cam_val'),
                          ('cam_base', 'cam_base_train')):
            metrics = load('cam_infer', name)
            if metrics is not None:
                rows[key] = metrics['mIoU']
                rows[key + '_sweep_best'] = metrics['sweep/best_mIoU']
                rows[key + '_sweep_bg'] = metrics['sweep/best_bg_score']
        names = [('refine', 'cam_cyc', 'cyc_train'),
                 ('refine', 'cam_cyc_rw_n', 'cyc_rw_train'),
                 ('refine', 'cam_eq14_cls', 'eq14_cls_train'),
                 ('rw', 'cam_rw', 'rw_train'),
                 ('rw', 'cam_rw_cyc', 'rw_cyc_train'),
                 ('rw', 'cam_rw_train_aug', 'rw_train_aug'),
                 ('rw', 'cam_rw_cyc_train_aug', 'rw_cyc_train_aug')]
        names += [('seg', row, f'seg_{name}_val')
                  for name, row in SEG_ROWS.items()]
        names += [('seg', row + '_tta', f'seg_{name}_val_tta')
                  for name, row in SEG_ROWS.items()]
        for stage, key, name in names:
            metrics = load(stage, name)
            if metrics is not None:
                rows[key] = metrics['mIoU']
        for features in ('cls', 'cyc'):
            metrics = load('corr', f'corr_{features}')
            if metrics is not None:
                rows[f'corr_acc_{features}'] = metrics['corr_acc']
                # with the peaks kept in the object (absent from the
                # metrics of an older mmcyc); its chance is the same for
                # both feature sets (the same pairs and references)
                if 'corr_acc_object' in metrics:
                    rows[f'corr_acc_object_{features}'] = \
                        metrics['corr_acc_object']
                    rows['corr_chance_object'] = metrics['corr_chance_object']
                # the class question, likewise
                if 'corr_class_object' in metrics:
                    rows[f'corr_class_object_{features}'] = \
                        metrics['corr_class_object']
                    rows['corr_chance_class_object'] = \
                        metrics['corr_chance_class_object']
        for cams, stage in (('cam', 'cam_infer'), ('cyc', 'refine'),
                            ('cyc_rw', 'refine'), ('eq14_cls', 'refine')):
            recall = load(stage, f'recall_{cams}_train')
            if recall is not None:
                for region in ('salient', 'weak', 'body'):
                    rows[f'recall_{cams}_{region}'] = recall[region]
        return rows
