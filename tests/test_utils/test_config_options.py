import pytest
from mmengine.config import Config

from mmcyc.utils.config_options import (data_root_options,
                                        final_checkpoint_name,
                                        parse_cfg_options, transform_options)


def _merged(cfg, options):
    cfg = Config(cfg.to_dict())
    cfg.merge_from_dict(parse_cfg_options(options))
    return cfg


def test_data_root_options_nested_and_absent_loaders():
    # the stage-2 layout: a paired wrapper around the image-label dataset,
    # no val / test loaders
    cfg = Config(
        dict(
            train_dataloader=dict(
                dataset=dict(
                    type='PairedVOCDataset',
                    dataset=dict(type='VOC', data_root='data/x'))),
            val_dataloader=None))
    options = data_root_options(cfg, '/d')
    assert options == ['train_dataloader.dataset.dataset.data_root=/d']
    assert _merged(cfg, options).train_dataloader.dataset.dataset.data_root \
        == '/d'


def test_data_root_options_plain_concat_and_leaf():
    cfg = Config(
        dict(
            train_dataloader=dict(
                dataset=dict(
                    type='ConcatDataset',
                    datasets=[
                        dict(type='A', data_root='a'),
                        dict(type='Repeat', dataset=dict(type='B'))
                    ])),
            val_dataloader=dict(dataset=dict(type='C', data_root='c')),
            test_dataloader=dict(dataset=dict(type='C'))))
    options = data_root_options(cfg, '/d')
    assert options == [
        'train_dataloader.dataset.datasets.0.data_root=/d',
        'train_dataloader.dataset.datasets.1.dataset.data_root=/d',
        'val_dataloader.dataset.data_root=/d',
        'test_dataloader.dataset.data_root=/d',
    ]
    merged = _merged(cfg, options)
    assert [d.get('data_root') or d.dataset.data_root
            for d in merged.train_dataloader.dataset.datasets] == ['/d', '/d']
    assert merged.test_dataloader.dataset.data_root == '/d'
    assert data_root_options(cfg, '/d', loaders=('val_dataloader', )) == \
        ['val_dataloader.dataset.data_root=/d']


def test_data_root_options_from_file():
    options = data_root_options('tests/data/cyc_tiny_synthvoc.py', '/d')
    assert options == ['train_dataloader.dataset.dataset.data_root=/d']


def test_parse_cfg_options_list_keys():
    options = parse_cfg_options([
        'custom_hooks.0.mode=fixed', 'custom_hooks.0.init_value=0.02',
        'a.b=1', 'c=x'
    ])
    assert options == {'custom_hooks.0.mode': 'fixed',
                       'custom_hooks.0.init_value': 0.02, 'a.b': 1, 'c': 'x'}
    cfg = Config(dict(custom_hooks=[dict(type='H', mode='m', kappa=0.9)]))
    cfg.merge_from_dict(options)
    assert cfg.custom_hooks == [
        dict(type='H', mode='fixed', kappa=0.9, init_value=0.02)
    ]
    assert parse_cfg_options([]) == {}


def test_final_checkpoint_name():
    assert final_checkpoint_name(
        Config(dict(train_cfg=dict(max_epochs=8)))) == 'epoch_8.pth'
    assert final_checkpoint_name(
        Config(dict(train_cfg=dict(max_iters=40)))) == 'iter_40.pth'
    assert final_checkpoint_name('tests/data/cyc_tiny_synthvoc.py') == \
        'epoch_2.pth'
    with pytest.raises(ValueError, match='neither'):
        final_checkpoint_name(Config(dict(train_cfg=dict(type='X'))))
    with pytest.raises(ValueError, match='no train_cfg'):
        final_checkpoint_name(Config(dict()))


def test_transform_options_find_every_instance():
    """Each matching transform, at its index, in plain and wrapped datasets
    of the named loaders only; none found names the config."""
    load = dict(type='LoadImageFromFile')
    cams = dict(type='LoadCAMFromFile', cam_dir='old')
    cfg = Config(
        dict(
            train_dataloader=dict(
                dataset=dict(type='Paired',
                             dataset=dict(pipeline=[load, cams]))),
            val_dataloader=dict(dataset=dict(pipeline=[load, cams])),
            test_dataloader=dict(dataset=dict(
                type='ConcatDataset',
                datasets=[dict(pipeline=[cams]), dict(pipeline=[load])]))))
    options = transform_options(cfg, 'LoadCAMFromFile',
                                ('val_dataloader', 'test_dataloader'),
                                cam_dir='/new', num_classes=5)
    assert options == [
        'val_dataloader.dataset.pipeline.1.cam_dir=/new',
        'val_dataloader.dataset.pipeline.1.num_classes=5',
        'test_dataloader.dataset.datasets.0.pipeline.0.cam_dir=/new',
        'test_dataloader.dataset.datasets.0.pipeline.0.num_classes=5',
    ]
    merged = _merged(cfg, options)
    assert merged.val_dataloader.dataset.pipeline[1] == dict(
        type='LoadCAMFromFile', cam_dir='/new', num_classes=5)
    assert merged.test_dataloader.dataset.datasets[0].pipeline[0][
        'cam_dir'] == '/new'
    assert merged.train_dataloader.dataset.dataset.pipeline[1][
        'cam_dir'] == 'old'  # loader not named
    assert transform_options(cfg, 'LoadCAMFromFile', cam_dir='x')[0] == \
        'train_dataloader.dataset.dataset.pipeline.1.cam_dir=x'
    with pytest.raises(ValueError, match='no LoadPseudoMask in the pipelines'):
        transform_options(cfg, 'LoadPseudoMask', mask_dir='m')
