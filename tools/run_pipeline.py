# Copyright (c) mmcyc contributors. All rights reserved.
"""Run the whole mmcyc pipeline, stage by stage, on the embedded default.

    python tools/run_pipeline.py [--config configs/pipeline_synthvoc.py]
                                 [--work-dir work_dirs/pipeline] [--from STAGE]
                                 [--to STAGE]

Stages (each a call of the stage's own tool, as a user would run it):

1. ``data``      generate the synthetic VOC-layout dataset if absent;
2. ``cam_train`` train the CAM classifier (``tools/train.py``);
3. ``cam_infer`` multi-scale CAMs of train, val and train_aug (the reference
   images of stage 3), scored as pseudo masks (``tools/test.py --cam-dir``);
4. ``cyc_train`` train CyCSNet on image pairs from the stage-1 checkpoint
   (``tools/train.py``), then draw its beta2 and loss curves;
5. ``corr``      on SynthVOC (part maps present): the part-correspondence
   accuracy of F before (the classifier's features) and after CyCSNet
   training, on the same pairs of train images, and its Fig. 3 drawings
   (``tools/analysis_tools/correspondence.py``);
6. ``refine``    revise the CAMs of train with N = 16 (scored) and with
   N = 64, then the rest of train_aug with N = 64, with same-class images of
   train_aug (Eq. 14, ``tools/refine_cam.py``);
7. ``aff_train`` train AffinityNet on affinity labels from the train_aug CAMs
   (``tools/train.py``);
8. ``rw``        random walk of the plain and of the refined CAMs of train
   (scored) and of train_aug, written as VOC palette PNGs
   (``WORK/pseudo_masks/{rw,rw_cyc}``, ``tools/test.py --pseudo-mask-dir``);
9. ``seg``       train a stock mmseg segmentation model on each folder of
   pseudo masks of train_aug (``tools/train.py``) and score it on val
   against the real masks (``tools/test.py``).

Stages 4-6 (CyCSNet and what uses it) and stage 7 (AffinityNet, which
needs only the stage-1 CAMs) are independent: they run as two lanes, each a
child ``run_pipeline.py --only ...`` with half the CPU threads.

A stage whose output exists is skipped, so an interrupted run continues where
it stopped (an interrupted training resumes from its last checkpoint);
``--from STAGE`` reruns that stage and every later one; ``--to STAGE`` stops
after that stage (a later run without it goes on). The measured rows go
to ``WORK_DIR/results.json`` (mIoU in percent) and ``WORK_DIR/results.md``
(the layout of the paper's Table 1: pseudo masks on train, and the val mIoU
of the segmentation model trained on them).

The work is ``mmcyc.apis.run_pipeline`` (stages in
``mmcyc.apis.pipeline_stages``); this tool parses the arguments.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmcyc.apis.stage_runner import PROJECT_ROOT, STAGES  # noqa: E402
from mmcyc.apis.run_pipeline import run_pipeline  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(
        description='Run the mmcyc pipeline on the embedded default dataset')
    parser.add_argument(
        '--config',
        default=osp.join(PROJECT_ROOT, 'configs', 'pipeline_synthvoc.py'),
        help='pipeline config naming the dataset and each stage config')
    parser.add_argument(
        '--work-dir',
        default=osp.join(PROJECT_ROOT, 'work_dirs', 'pipeline'),
        help='where every stage writes its outputs')
    parser.add_argument(
        '--data-root', help='dataset folder (overrides the pipeline config)')
    parser.add_argument(
        '--seed',
        type=int,
        help='seed of the dataset (generator) and of every training and '
        'sampling; the data goes to <data.root>_seed<S> unless --data-root '
        'is given (default: the configs\' seeds, dataset seed 0)')
    parser.add_argument(
        '--from',
        dest='from_stage',
        choices=STAGES,
        help='rerun this stage and all later ones')
    parser.add_argument(
        '--to',
        dest='to_stage',
        choices=STAGES,
        help='stop after this stage; results.json holds the rows measured '
        'so far (e.g. --to rw leaves out stage 5, the longest; a later run '
        'without --to goes on from there)')
    parser.add_argument(
        '--only',
        nargs='+',
        choices=STAGES,
        help='run only these stages, in pipeline order (how the main job '
        'runs its lanes; results.json is then not written)')
    parser.add_argument(
        '--sequential',
        action='store_true',
        help='run the lanes (stages 4-6 and 7) one after the other')
    return parser.parse_args()


def main():
    args = parse_args()
    run_pipeline(args.config, args.work_dir, data_root=args.data_root,
                 seed=args.seed, from_stage=args.from_stage, only=args.only,
                 sequential=args.sequential, to_stage=args.to_stage,
                 entry=osp.abspath(__file__))


if __name__ == '__main__':
    main()
