"""The LPCAM fitting step on a tiny generated dataset, and its checkpoint
tested by ``tools/test.py``."""
import builtins
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS
from PIL import Image

import mmcyc  # noqa: F401
from mmcyc.apis import fit_lpcam, gather_lpcam_sets, load_stage1_checkpoint
from mmcyc.datasets.cls_labels import load_cls_labels
from mmcyc.datasets.synthvoc import make_synthvoc
from mmcyc.datasets.voc_image_label import read_image_names
from mmcyc.utils import load_cam, save_cam
from mmcyc.utils.manifest import file_digest
from mmcyc.utils.state_dict_check import check_state_dict

init_default_scope('mmseg')
SPLIT = 'ImageSets/Segmentation/train_aug.txt'


@pytest.fixture(scope='module')
def lpcam_inputs(tmp_path_factory):
    """72 images of 40 px (seed 2: every class occurs), an untrained
    stage-1 checkpoint, CAMs made from the masks, an LPCAM config."""
    work = tmp_path_factory.mktemp('lpcam')
    root = str(work / 'data')
    make_synthvoc(root, num_train=72, num_val=2, size=40, seed=2)
    cfg = Config.fromfile('tests/data/cam_tiny_synthvoc.py')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
    torch.manual_seed(0)
    cls = str(work / 'cls.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(),
                'meta': {}}, cls)
    labels = load_cls_labels(osp.join(root, 'cls_labels.npy'))
    rng = np.random.default_rng(0)
    cam_dir = str(work / 'cams')
    names = read_image_names(osp.join(root, SPLIT))
    for name in names:
        mask = np.asarray(Image.open(
            osp.join(root, 'SegmentationClassAug', name + '.png')))
        classes = np.flatnonzero(labels[name])
        cams = np.stack([(mask == c + 1) * 0.6 + rng.random(mask.shape) * 0.08
                         for c in classes])
        save_cam(osp.join(cam_dir, f'{name}.npz'), cams, classes)
    cfg.model.type = 'LPCAM'
    # an untrained classifier is never 90 % sure: keep the best centre
    cfg.model.fit_cfg = dict(num_clusters=3,
                             missing_class_prototype='most_confident')
    cfg.model.test_cfg = dict(scales=(1.0, ), flip=True)
    config = str(work / 'lpcam_tiny.py')
    cfg.dump(config)
    return dict(work=work, root=root, cls=cls, cam_dir=cam_dir,
                config=config, names=names, labels=labels)


def build_model(inputs, **fit_cfg):
    cfg = Config.fromfile(inputs['config'])
    cfg.model.fit_cfg.update(fit_cfg)
    model = MODELS.build(cfg.model)
    load_stage1_checkpoint(model, inputs['cls'])
    loader = dict(cfg.test_dataloader)
    loader['dataset'] = dict(loader['dataset'], ann_file=SPLIT)
    return model.eval(), Runner.build_dataloader(loader)


def test_sets_are_the_positions_above_and_below_the_threshold(lpcam_inputs):
    model, loader = build_model(lpcam_inputs)
    class_sets, context_sets = gather_lpcam_sets(
        model, loader, lpcam_inputs['cam_dir'], progress=False)
    # counted directly: the CAM nearest-resized to the 5 x 5 feature grid
    expected = np.zeros((20, 2), dtype=int)
    for name in lpcam_inputs['names']:
        cams, classes = load_cam(
            osp.join(lpcam_inputs['cam_dir'], name + '.npz'))
        small = F.interpolate(torch.from_numpy(cams)[None], size=(5, 5),
                              mode='nearest')[0]
        for cam, c in zip(small, classes):
            expected[c] += [(cam > 0.1).sum(), (cam < 0.1).sum()]
    got = np.array([[len(a), len(b)]
                    for a, b in zip(class_sets, context_sets)])
    assert (got == expected).all()
    assert (expected[:, 0] > 0).all()
    # a cap keeps a subset of each set, of the cap's size
    capped_model, loader = build_model(lpcam_inputs, max_vectors=4)
    capped, _ = gather_lpcam_sets(capped_model, loader,
                                  lpcam_inputs['cam_dir'], progress=False)
    for full, sub in zip(class_sets, capped):
        assert len(sub) == min(4, len(full))
        assert (torch.cdist(sub.float(), full.float()).amin(1) < 1e-4).all()


def test_fit_writes_a_checkpoint_test_py_loads(lpcam_inputs, run_tool,
                                               python):
    work = lpcam_inputs['work']
    out = str(work / 'lpcam.pth')
    meta = fit_lpcam(lpcam_inputs['config'], lpcam_inputs['cls'],
                     lpcam_inputs['cam_dir'], SPLIT, out, progress=False)
    assert meta['split'] == SPLIT
    assert meta['stage1_checkpoint'] == osp.abspath(lpcam_inputs['cls'])
    assert meta['cam_dir'] == osp.abspath(lpcam_inputs['cam_dir'])
    assert len(meta['classes']) == 20
    assert meta['classes'][0]['class_name'] == 'aeroplane'
    saved = torch.load(out, weights_only=False)
    model = MODELS.build(Config.fromfile(lpcam_inputs['config']).model)
    check_state_dict(model, saved['state_dict'], out)
    model.load_state_dict(saved['state_dict'], strict=True)
    assert model.class_prototype_mask.any(dim=1).all()
    assert meta['stage1_checkpoint_digest'] == file_digest(
        lpcam_inputs['cls'])
    # the same inputs give the same prototypes; the stage-1 checkpoint is
    # read once (digest and weights from the same bytes)
    again = str(work / 'lpcam_again.pth')
    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if osp.abspath(str(file)) == osp.abspath(lpcam_inputs['cls']):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, 'open', counting_open)
        fit_lpcam(lpcam_inputs['config'], lpcam_inputs['cls'],
                  lpcam_inputs['cam_dir'], SPLIT, again, progress=False)
    assert len(opened) == 1
    again_sd = torch.load(again, weights_only=False)['state_dict']
    for key in model.PROTOTYPE_BUFFERS:
        assert torch.equal(again_sd[key], saved['state_dict'][key])

    # tools/test.py loads it strictly and writes LPCAM maps as CAM files
    cam_dir, metrics = str(work / 'lpcams'), str(work / 'metrics.json')
    run_tool(python, 'tools/test.py', lpcam_inputs['config'], out,
             '--work-dir', str(work / 'test'), '--cam-dir', cam_dir,
             '--split', 'ImageSets/Segmentation/train.txt',
             '--metrics-json', metrics)
    assert 'mIoU' in json.load(open(metrics))
    names = read_image_names(osp.join(lpcam_inputs['root'],
                                      'ImageSets/Segmentation/train.txt'))
    cams, classes = load_cam(osp.join(cam_dir, names[0] + '.npz'))
    assert classes.tolist() == np.flatnonzero(
        lpcam_inputs['labels'][names[0]]).tolist()
    assert cams.shape == (len(classes), 40, 40)
    assert cams.max() <= 1 and cams.min() >= 0


def test_missing_cam_file_is_named(lpcam_inputs, tmp_path):
    model, loader = build_model(lpcam_inputs)
    with pytest.raises(FileNotFoundError, match='tools/test.py --cam-dir'):
        gather_lpcam_sets(model, loader, str(tmp_path), progress=False)
