# Copyright (c) mmcyc contributors. All rights reserved.
"""Run the whole mmcyc pipeline, stage by stage, on the embedded default.

    python tools/run_pipeline.py [--config configs/pipeline_synthvoc.py]
                                 [--work-dir work_dirs/pipeline] [--from STAGE]

Stages (each a call of the stage's own tool, as a user would run it):

1. ``data``      generate the synthetic VOC-layout dataset if absent;
2. ``cam_train`` train the CAM classifier (``tools/train.py``);
3. ``cam_infer`` multi-scale CAMs of train, val and train_aug (the reference
   images of stage 3), scored as pseudo masks (``tools/test.py --cam-dir``);
4. ``cyc_train`` train CyCSNet on image pairs from the stage-1 checkpoint
   (``tools/train.py``), then draw its beta2 and loss curves;
5. ``refine``    revise the train CAMs with same-class images of train_aug
   (Eq. 14, ``tools/refine_cam.py``) and score them;
6. ``aff_train`` train AffinityNet on affinity labels from the train_aug CAMs
   (``tools/train.py``);
7. ``rw``        random walk of the plain and of the refined train CAMs,
   written as VOC palette PNGs (``WORK/pseudo_masks/{rw,rw_cyc}``) and scored
   (``tools/test.py --pseudo-mask-dir``).

A stage whose output exists is skipped, so an interrupted run continues where
it stopped (an interrupted training resumes from its last checkpoint);
``--from STAGE`` reruns that stage and every later one. The measured rows go
to ``WORK_DIR/results.json`` (mIoU in percent) and ``WORK_DIR/results.md``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.visualization import Visualizer

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmcyc.datasets.synthvoc import is_complete, make_synthvoc  # noqa: E402
from mmcyc.visualization import draw_curves, read_scalars  # noqa: E402

STAGES = ('data', 'cam_train', 'cam_infer', 'cyc_train', 'refine',
          'aff_train', 'rw')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Run the mmcyc pipeline on the embedded default dataset')
    parser.add_argument(
        '--config',
        default=osp.join(REPO, 'configs', 'pipeline_synthvoc.py'),
        help='pipeline config naming the dataset and each stage config')
    parser.add_argument(
        '--work-dir',
        default=osp.join(REPO, 'work_dirs', 'pipeline'),
        help='where every stage writes its outputs')
    parser.add_argument(
        '--data-root', help='dataset folder (overrides the pipeline config)')
    parser.add_argument(
        '--from',
        dest='from_stage',
        choices=STAGES,
        help='rerun this stage and all later ones')
    return parser.parse_args()


class Pipeline:
    """The stages of the pipeline with their outputs under ``work_dir``."""

    def __init__(self, cfg: Config, work_dir: str, data_root: str, logger):
        self.cfg = cfg
        self.work_dir = work_dir
        self.data_root = data_root
        self.logger = logger

    # -------------------------------------------------------------- paths
    def path(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    def stage_config(self, name: str) -> str:
        config = self.cfg[name]['config']
        return config if osp.isabs(config) else osp.join(REPO, config)

    def data_options(self, config: str):
        """--cfg-options pointing every dataloader of a config at the data."""
        cfg = Config.fromfile(config)
        options = []
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            key, dataset = f'{loader}.dataset', cfg.get(loader)
            if not dataset:
                continue
            dataset = dataset['dataset']
            while 'data_root' not in dataset and 'dataset' in dataset:
                key, dataset = key + '.dataset', dataset['dataset']
            options.append(f'{key}.data_root={self.data_root}')
        return options

    def run_tool(self, tool: str, *args: str) -> None:
        cmd = [sys.executable, osp.join(REPO, 'tools', tool), *args]
        self.logger.info('$ ' + ' '.join(cmd))
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
                   os.environ.get('PYTHONPATH', ''))
        subprocess.run(cmd, check=True, env=env)

    # ------------------------------------------------------------- stages
    def data(self, force: bool) -> None:
        args = dict(self.cfg.data.get('generator', {}))
        if not force and is_complete(self.data_root, **args):
            self.logger.info(f'data: {self.data_root} is complete, skipped')
            return
        self.logger.info(f'data: generating the synthetic dataset in '
                         f'{self.data_root}')
        make_synthvoc(self.data_root, **args)

    def final_checkpoint(self, stage: str) -> str:
        cfg = Config.fromfile(self.stage_config(stage))
        return self.path(stage, f'epoch_{cfg.train_cfg.max_epochs}.pth')

    def cam_checkpoint(self) -> str:
        return self.final_checkpoint('cam')

    def train_stage(self, stage: str, force: bool, *options: str) -> None:
        """Train a stage's config unless its final checkpoint exists."""
        work = self.path(stage)
        if force and osp.isdir(work):
            shutil.rmtree(work)
        if osp.isfile(self.final_checkpoint(stage)):
            self.logger.info(f'{stage}: final checkpoint exists, skipped')
            return
        resume = ['--resume'] if osp.isfile(
            osp.join(work, 'last_checkpoint')) else []
        config = self.stage_config(stage)
        self.run_tool('train.py', config, '--work-dir', work, *resume,
                      '--cfg-options', *self.data_options(config), *options)

    def cam_train(self, force: bool) -> None:
        self.train_stage('cam', force)

    def cam_infer(self, force: bool) -> None:
        cam_dir = self.path('cams', 'cam')
        if force:  # CAMs of an older checkpoint must not be read back
            shutil.rmtree(cam_dir, ignore_errors=True)
        for split in ('train', 'val', 'train_aug'):
            metrics = self.path('metrics', f'cam_{split}.json')
            if force and osp.isfile(metrics):
                os.remove(metrics)
            if osp.isfile(metrics):
                self.logger.info(f'cam_infer: {split} scored, skipped')
                continue
            config = self.stage_config('cam')
            self.run_tool('test.py', config, self.cam_checkpoint(),
                          '--work-dir', self.path('cam_test'), '--cam-dir',
                          cam_dir, '--split',
                          f'ImageSets/Segmentation/{split}.txt',
                          '--metrics-json', metrics, '--cfg-options',
                          *self.data_options(config))

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
        visualizer = Visualizer(
            name='mmcyc_pipeline_curves',
            save_dir=self.path('cyc', 'curves'),
            vis_backends=[dict(type='LocalVisBackend')])
        visualizer.add_image('cyc_training_curves',
                             draw_curves(series, 'CyCSNet training'))
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

    def refine(self, force: bool) -> None:
        out_dir = self.path('cams', 'cyc')
        metrics = self.path('metrics', 'cyc_train.json')
        if force:
            shutil.rmtree(out_dir, ignore_errors=True)
            if osp.isfile(metrics):
                os.remove(metrics)
        if osp.isfile(metrics):
            self.logger.info('refine: train refined and scored, skipped')
            return
        config = self.stage_config('cyc')
        self.run_tool('refine_cam.py', config, self.final_checkpoint('cyc'),
                      '--cam-dir', self.path('cams', 'cam'), '--out-dir',
                      out_dir, '--split', 'ImageSets/Segmentation/train.txt',
                      '--bank-split', 'ImageSets/Segmentation/train_aug.txt',
                      '--metrics-json', metrics, '--cfg-options',
                      *self.data_options(config))

    def aff_train(self, force: bool) -> None:
        cams = self.path('cams', 'cam')
        self.train_stage(
            'aff', force,
            f'model.backbone.init_cfg.checkpoint={self.cam_checkpoint()}',
            f'train_dataloader.dataset.pipeline.1.cam_dir={cams}',
            f'model.test_cfg.cam_dir={cams}')

    def rw(self, force: bool) -> None:
        config = self.stage_config('aff')
        for name, cams in (('rw', 'cam'), ('rw_cyc', 'cyc')):
            metrics = self.path('metrics', f'{name}_train.json')
            masks = self.path('pseudo_masks', name)
            if force:
                shutil.rmtree(masks, ignore_errors=True)
                if osp.isfile(metrics):
                    os.remove(metrics)
            if osp.isfile(metrics):
                self.logger.info(f'rw: {name} scored, skipped')
                continue
            self.run_tool('test.py', config, self.final_checkpoint('aff'),
                          '--work-dir', self.path('aff_test'), '--split',
                          'ImageSets/Segmentation/train.txt',
                          '--pseudo-mask-dir', masks, '--metrics-json',
                          metrics, '--cfg-options',
                          *self.data_options(config),
                          f'model.test_cfg.cam_dir={self.path("cams", cams)}')

    # ------------------------------------------------------------ results
    def collect(self) -> dict:
        rows = {}
        for key, name in (('cam', 'cam_train'), ('cam_val', 'cam_val')):
            path = self.path('metrics', f'{name}.json')
            if osp.isfile(path):
                with open(path) as f:
                    metrics = json.load(f)
                rows[key] = metrics['mIoU']
                rows[key + '_sweep_best'] = metrics['sweep/best_mIoU']
                rows[key + '_sweep_bg'] = metrics['sweep/best_bg_score']
        for key, name in (('cam_cyc', 'cyc_train'), ('cam_rw', 'rw_train'),
                          ('cam_rw_cyc', 'rw_cyc_train')):
            path = self.path('metrics', f'{name}.json')
            if osp.isfile(path):
                with open(path) as f:
                    rows[key] = json.load(f)['mIoU']
        return rows


def write_results(rows: dict, work_dir: str) -> str:
    """Write results.json and results.md atomically; return the table."""
    lines = [
        '| row | pseudo-mask mIoU (%) |', '|---|---|',
        f"| CAM, train (bg 0.2) | {rows.get('cam', float('nan')):.2f} |",
        f"| CAM, val (bg 0.2) | {rows.get('cam_val', float('nan')):.2f} |",
        f"| CAM + Cyc, train (bg 0.2) | "
        f"{rows.get('cam_cyc', float('nan')):.2f} |",
        f"| CAM + RW, train | {rows.get('cam_rw', float('nan')):.2f} |",
        f"| CAM + RW + Cyc, train | "
        f"{rows.get('cam_rw_cyc', float('nan')):.2f} |",
        f"| CAM, train, oracle bg {rows.get('cam_sweep_bg', float('nan'))} "
        f"| {rows.get('cam_sweep_best', float('nan')):.2f} |",
    ]
    table = '\n'.join(lines) + '\n'
    for name, text in (('results.json', json.dumps(rows, indent=2)),
                       ('results.md', table)):
        tmp = osp.join(work_dir, name + '.tmp')
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, osp.join(work_dir, name))
    return table


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    data_root = osp.abspath(args.data_root or osp.join(REPO, cfg.data.root))
    logger = MMLogger.get_instance(
        'mmcyc_pipeline', log_file=osp.join(work_dir, 'pipeline.log'))
    pipeline = Pipeline(cfg, work_dir, data_root, logger)
    first_forced = STAGES.index(args.from_stage) if args.from_stage else None
    start = time.time()
    for index, stage in enumerate(STAGES):
        force = first_forced is not None and index >= first_forced
        logger.info(f'[{index + 1}/{len(STAGES)}] stage {stage}'
                    f'{" (forced)" if force else ""}')
        stage_start = time.time()
        getattr(pipeline, stage)(force)
        logger.info(f'[{index + 1}/{len(STAGES)}] stage {stage} done in '
                    f'{time.time() - stage_start:.0f} s')
    rows = pipeline.collect()
    table = write_results(rows, work_dir)
    logger.info(f'pipeline done in {time.time() - start:.0f} s; '
                f'results in {osp.join(work_dir, "results.json")}\n{table}')
    print(table)


if __name__ == '__main__':
    main()
