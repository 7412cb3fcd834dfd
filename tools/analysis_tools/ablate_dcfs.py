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
the run's overrides, the classifier checkpoint and CAM folder by digest, N),
and its training one of its own (``RUN/mmcyc_train.json``: the same without
the CAM folder and N, which only the refinement reads). A run done with the
same inputs is skipped; one made from other inputs is removed and made
afresh, except that a run whose training had the same inputs (another
``--num-refs`` or ``--cam-dir``) keeps it and only refines again; an
interrupted one continues (a whole final checkpoint is not trained again, a
cut-short training resumes, a written metrics file is not refined again).
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

The work is ``mmcyc.apis.dcfs_ablation.ablate_dcfs``; this tool parses the
arguments.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmcyc.apis.dcfs_ablation import (DEFAULT_SETTINGS,  # noqa: E402
                                      SETTING_FORMS, ablate_dcfs)


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


def main():
    args = parse_args()
    ablate_dcfs(args.config, args.cam_checkpoint, args.cam_dir,
                args.out_dir, settings=args.settings, seeds=args.seeds,
                num_refs=args.num_refs, data_root=args.data_root,
                workers=args.workers, cfg_options=args.cfg_options)


if __name__ == '__main__':
    main()
