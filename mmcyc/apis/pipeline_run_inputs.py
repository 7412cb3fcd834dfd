# Copyright (c) mmcyc contributors. All rights reserved.
"""What a finished main-job run refined its CAMs with, read back from its
work folder, so that an analysis tool (``sweep_num_refs.py``) can repeat
stage 3 of that run exactly: the same configs, checkpoints, stage-1 CAMs,
data and sampling seed."""
import os.path as osp
from typing import List

from mmengine.config import Config

from mmcyc.utils.manifest import read_manifest
from .pipeline_stages import Pipeline


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


def _entry(parts: dict, entry: str, stage: str) -> dict:
    """A pipeline config entry as the stage's manifest recorded it."""
    try:
        return parts['entries'][entry]
    except KeyError:
        raise KeyError(f'manifests/{stage}.json: no entries.{entry} in its '
                       'parts; expected a manifest written by run_pipeline'
                       ) from None


class PipelineRunInputs:
    """Stage 3's inputs of a run of ``tools/run_pipeline.py``.

    Read from the run's manifests (``WORK/manifests/cam_train.json`` and
    ``refine.json``), which must say 'done'; the paths are those of the
    :class:`Pipeline` that made the run, rebuilt from the config entries the
    manifests recorded.

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
        cfg = Config(
            dict(
                cam=_entry(cam, 'cam', 'cam_train'),
                cyc=_entry(refine, 'cyc', 'refine'),
                refine=_entry(refine, 'refine', 'refine')))
        self._pipeline = Pipeline(cfg, work_dir, refine['data_root'],
                                  logger=None, seed=refine['seed'])
        self.cyc_config = self._pipeline.stage_config('cyc')
        self.cyc_checkpoint = self._pipeline.final_checkpoint('cyc')
        self.cam_checkpoint = self._pipeline.cam_checkpoint()
        self.cam_dir = self._pipeline.path('cams', 'cam')
        self.seed = refine['seed']
        self.data_root = refine['data_root']
        self.num_refs = cfg.refine.num_refs

    def cfg_options(self) -> List[str]:
        """``--cfg-options`` items for ``tools/refine_cam.py`` with
        :attr:`cyc_config`: the run's data and, with a seed, its sampling
        seed (``refiner.seed``), as the main job passes them."""
        return (self._pipeline.data_options(self.cyc_config) +
                self._pipeline.refiner_seed_options())

    def weights(self, classifier_features: bool = False) -> List[str]:
        """``tools/refine_cam.py``'s weight arguments, as the main job gives
        them: the trained CyCSNet, or F = the stage-1 classifier (its
        ``eq14_cls`` row)."""
        return self._pipeline.refine_weights(classifier_features)
