# Copyright (c) mmcyc contributors. All rights reserved.
"""What a finished main-job run refined its CAMs with, read back from its
work folder, so that an analysis tool (``sweep_num_refs.py``) can repeat
stage 3 of that run exactly: the same configs, checkpoints, stage-1 CAMs,
data and sampling seed."""
import os.path as osp
from typing import List

from mmcyc.utils.config_options import data_root_options, final_checkpoint_name
from mmcyc.utils.manifest import read_manifest
from .stage_runner import PROJECT_ROOT


def _done_stage_parts(work_dir: str, stage: str) -> dict:
    """The parts of a stage's manifest, which must say 'done'."""
    path = osp.join(work_dir, 'manifests', f'{stage}.json')
    manifest = read_manifest(path)
    if manifest is None:
        raise FileNotFoundError(
            f'{path}: no manifest of stage {stage}; expected the work folder '
            f'of a tools/run_pipeline.py run that got past stage {stage}')
    if manifest['state'] != 'done':
        raise RuntimeError(
            f'{path}: stage {stage} is {manifest["state"]!r}, not done; '
            'finish the run first (tools/run_pipeline.py resumes it)')
    return manifest['parts']


def _stage_config(parts: dict, entry: str, manifest: str) -> str:
    try:
        config = parts['entries'][entry]['config']
    except KeyError:
        raise KeyError(f'{manifest}: no entries.{entry}.config in its parts; '
                       'expected a manifest written by run_pipeline') from None
    return config if osp.isabs(config) else osp.join(PROJECT_ROOT, config)


class PipelineRunInputs:
    """Stage 3's inputs of a run of ``tools/run_pipeline.py``.

    Read from the run's manifests (``WORK/manifests/cam_train.json`` and
    ``refine.json``), which must say 'done'.

    Args:
        work_dir (str): The run's ``--work-dir``.

    Attributes:
        cyc_config (str): Stage 2's config (CyCSNet, the refiner settings).
        cyc_checkpoint (str): The trained CyCSNet.
        cam_checkpoint (str): The stage-1 classifier (F's initialisation).
        cam_dir (str): The stage-1 CAMs (``WORK/cams/cam``).
        seed (int | None): The run's ``--seed`` (None: the configs' seeds).
        data_root (str): The dataset the run used.
        num_refs (int): N of the scored refinement (``refine.num_refs``).
    """

    def __init__(self, work_dir: str):
        work_dir = osp.abspath(work_dir)
        refine = _done_stage_parts(work_dir, 'refine')
        cam = _done_stage_parts(work_dir, 'cam_train')
        manifests = osp.join(work_dir, 'manifests')
        self.cyc_config = _stage_config(refine, 'cyc',
                                        osp.join(manifests, 'refine.json'))
        cam_config = _stage_config(cam, 'cam',
                                   osp.join(manifests, 'cam_train.json'))
        self.cyc_checkpoint = osp.join(work_dir, 'cyc',
                                       final_checkpoint_name(self.cyc_config))
        self.cam_checkpoint = osp.join(work_dir, 'cam',
                                       final_checkpoint_name(cam_config))
        self.cam_dir = osp.join(work_dir, 'cams', 'cam')
        self.seed = refine['seed']
        self.data_root = refine['data_root']
        self.num_refs = refine['entries']['refine']['num_refs']

    def cfg_options(self) -> List[str]:
        """``--cfg-options`` items for ``tools/refine_cam.py`` with
        :attr:`cyc_config`: the run's data and, with a seed, its sampling
        seed (``refiner.seed``), as the main job passes them."""
        seed = [] if self.seed is None else [f'refiner.seed={self.seed}']
        return data_root_options(self.cyc_config, self.data_root) + seed

    def weights(self, classifier_features: bool = False) -> List[str]:
        """``tools/refine_cam.py``'s weight arguments: the trained CyCSNet,
        or F = the stage-1 classifier (the main job's ``eq14_cls`` row)."""
        if classifier_features:
            return ['-', '--init-from-classifier', self.cam_checkpoint]
        return [self.cyc_checkpoint]
