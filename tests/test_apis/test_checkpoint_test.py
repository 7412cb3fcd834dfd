"""The test-run set-up of ``mmcyc.apis.checkpoint_test`` (the whole run is
tested through tools/test.py in tests/test_tools/test_train_test.py)."""
import pytest
from mmengine.config import Config

from mmcyc.apis.checkpoint_test import (add_test_outputs,
                                        add_test_time_augmentation,
                                        output_parts)


def test_add_test_outputs_sets_writers_and_readers():
    cfg = Config.fromfile('configs/aff_resnet38_synthvoc.py')
    add_test_outputs(cfg, split='ImageSets/Segmentation/val.txt',
                     input_cam_dir='/cams', pseudo_mask_dir='/masks')
    dataset = cfg.test_dataloader.dataset
    assert dataset.ann_file == 'ImageSets/Segmentation/val.txt'
    steps = {step['type']: step for step in dataset.pipeline}
    assert steps['LoadCAMFromFile']['cam_dir'] == '/cams'
    assert steps['LoadPseudoMask']['mask_dir'] == '/masks'
    assert dict(type='PseudoMaskWriterHook', out_dir='/masks',
                loops=('test', )) in cfg.custom_hooks
    # what names the written masks: the CAMs read, not the masks' folder
    parts = output_parts(cfg, 'digest')
    assert parts['cams_read'] == '/cams' and parts['checkpoint'] == 'digest'
    assert '/masks' not in str(parts)


def test_add_test_outputs_cam_writing():
    cfg = Config.fromfile('configs/cam_resnet38_synthvoc.py')
    add_test_outputs(cfg, cam_dir='/out')
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert pipeline[1]['type'] == 'LoadCAMFromFile'
    assert pipeline[1]['key'] == 'written_cam'
    assert pipeline[1]['skip_missing'] is True
    assert cfg.custom_hooks[-1] == dict(type='CAMWriterHook', out_dir='/out',
                                        loops=('test', ))
    # the read-back step is not part of what the CAMs are made of
    assert output_parts(cfg, 'd')['cams_read'] is None


def test_input_cam_dir_needs_a_reader():
    cfg = Config.fromfile('configs/cam_resnet38_synthvoc.py')
    with pytest.raises(ValueError, match='has no LoadCAMFromFile'):
        add_test_outputs(cfg, input_cam_dir='/cams')


def test_test_time_augmentation_wraps_model_and_pipeline():
    cfg = Config.fromfile('configs/fcn_r18-d8_synthvoc-pseudo.py')
    model = cfg.model.to_dict()
    add_test_time_augmentation(cfg)
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module.to_dict() == model
    load, tta = cfg.test_dataloader.dataset.pipeline
    assert load['type'] == 'LoadCheckedImageFromFile'
    resizes, flips, annotations, pack = tta['transforms']
    assert [r['scale_factor'] for r in resizes] == [
        0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert [f['prob'] for f in flips] == [0., 1.]
    assert annotations[0]['type'] == 'LoadCheckedAnnotations'


def test_test_time_augmentation_needs_a_tta_pipeline():
    cfg = Config.fromfile('configs/cam_resnet38_synthvoc.py')
    with pytest.raises(ValueError,
                       match=r'cam_resnet38_synthvoc\.py has no tta_pipeline'):
        add_test_time_augmentation(cfg)
