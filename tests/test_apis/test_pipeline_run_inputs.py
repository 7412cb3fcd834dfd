"""PipelineRunInputs: stage 3's inputs of a main-job run, from its
manifests (mmcyc/apis/pipeline_run_inputs.py)."""
import os.path as osp

import pytest

from mmcyc.apis.pipeline_run_inputs import PipelineRunInputs
from mmcyc.utils.manifest import write_manifest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CAM = 'tests/data/cam_tiny_synthvoc.py'
CYC = 'tests/data/cyc_tiny_synthvoc.py'


def write_run(work, seed, state='done'):
    """The two manifests a run has once stage 3 is done (parts as
    run_pipeline writes them; the keys are not read)."""
    common = dict(seed=seed, data_root='/data/synth_seed7', inputs={})
    write_manifest(
        str(work / 'manifests' / 'cam_train.json'), 'k1', 'done',
        dict(common, stage='cam_train', entries=dict(cam=dict(config=CAM))))
    write_manifest(
        str(work / 'manifests' / 'refine.json'), 'k2', state,
        dict(common, stage='refine',
             entries=dict(cyc=dict(config=CYC),
                          refine=dict(num_refs=4, num_refs_rw=8))))


def test_inputs_and_options_of_a_seeded_run(tmp_path):
    write_run(tmp_path, seed=7)
    run = PipelineRunInputs(str(tmp_path))
    assert run.cyc_config == osp.join(REPO, CYC)
    # the tiny configs train 2 epochs each
    assert run.cam_checkpoint == str(tmp_path / 'cam' / 'epoch_2.pth')
    assert run.cyc_checkpoint == str(tmp_path / 'cyc' / 'epoch_2.pth')
    assert run.cam_dir == str(tmp_path / 'cams' / 'cam')
    assert run.seed == 7 and run.num_refs == 4
    options = run.cfg_options()
    assert options[-1] == 'refiner.seed=7'
    assert 'train_dataloader.dataset.dataset.data_root=/data/synth_seed7' \
        in options
    assert run.weights() == [run.cyc_checkpoint]
    assert run.weights(classifier_features=True) == [
        '-', '--init-from-classifier', run.cam_checkpoint]


def test_unseeded_run_adds_no_seed(tmp_path):
    write_run(tmp_path, seed=None)
    options = PipelineRunInputs(str(tmp_path)).cfg_options()
    assert options and not any(o.startswith('refiner.') for o in options)


def test_unfinished_or_foreign_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match='no manifest of stage'):
        PipelineRunInputs(str(tmp_path))
    write_run(tmp_path, seed=1, state='started')
    with pytest.raises(RuntimeError, match="stage refine is 'started'"):
        PipelineRunInputs(str(tmp_path))
