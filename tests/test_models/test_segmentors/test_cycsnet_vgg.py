# Copyright (c) mmcyc contributors. All rights reserved.
"""CyCSNet with psa's VGG-16: F and C from a VGG stage-1 checkpoint."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401
from mmcyc.models.backbones import VGG16d

init_default_scope('mmseg')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def config_model(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name)).model
    cfg.pop('data_preprocessor')
    return cfg


@pytest.fixture(scope='module')
def stage1_checkpoint(tmp_path_factory):
    """A stage-1 checkpoint of configs/cam_vgg16_synthvoc.py's model."""
    torch.manual_seed(0)
    classifier = MODELS.build(config_model('cam_vgg16_synthvoc.py'))
    path = tmp_path_factory.mktemp('vgg') / 'epoch_40.pth'
    torch.save({'state_dict': classifier.state_dict(), 'meta': {}}, path)
    return str(path), classifier.state_dict()


def pair_batch(size=32):
    """Two pairs [A_1, A_2, B_1, B_2] with 20-class labels."""
    torch.manual_seed(1)
    inputs = torch.randn(4, 3, size, size) * 50  # caffe-scaled pixels
    labels = torch.zeros(4, 20)
    labels[0, [0, 3]] = labels[2, [0, 5]] = 1  # pair 1 shares class 0
    labels[1, 7] = labels[3, [7, 9]] = 1  # pair 2 shares class 7
    samples = []
    for i in range(4):
        s = SegDataSample()
        s.gt_img_label = labels[i]
        samples.append(s)
    for i in range(2):
        shared = labels[i] * labels[2 + i]
        samples[i].gt_shared_label = samples[2 + i].gt_shared_label = shared
    return inputs, samples


def build_cycsnet(checkpoint):
    cfg = config_model('cyc_vgg16_synthvoc.py')
    cfg.cam_classifier_checkpoint = checkpoint
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_f_and_c_load_from_the_vgg_stage1_checkpoint(stage1_checkpoint):
    path, state_dict = stage1_checkpoint
    model = build_cycsnet(path)
    assert isinstance(model.backbone, VGG16d)
    assert model.backbone.out_channels == (128, )  # fc7 at width 1/8
    assert model.cam_classifier.cam_activation == 'sqrt_relu'
    # C: every key; F: every backbone key (it is C's whole backbone)
    for key, value in model.cam_classifier.state_dict().items():
        assert torch.equal(value, state_dict[key]), key
    own = model.backbone.state_dict()
    assert set(own) == {
        k[len('backbone.'):] for k in state_dict if k.startswith('backbone.')
    }
    for key, value in own.items():
        assert torch.equal(value, state_dict['backbone.' + key]), key


def test_loss_runs_and_reaches_f(stage1_checkpoint):
    model = build_cycsnet(stage1_checkpoint[0]).train()
    inputs, samples = pair_batch()
    losses = model(inputs, samples, mode='loss')
    assert {'loss_cyc', 'loss_cls'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.fc7.weight.grad is not None
    assert model.backbone.conv1_1.weight.grad is not None
    assert all(p.grad is None for p in model.cam_classifier.parameters())
    feats = model(inputs[:1], mode='tensor')
    assert feats.shape == (1, 128, 4, 4)


def test_a_resnet_checkpoint_is_refused(tmp_path):
    classifier = MODELS.build(
        dict(type='CAMClassifier', num_classes=20,
             backbone=dict(type='ResNet38', widen_factor=0.0625,
                           out_indices=(3, ))))
    path = tmp_path / 'r38.pth'
    torch.save({'state_dict': classifier.state_dict()}, path)
    with pytest.raises(ValueError, match='r38.pth'):
        build_cycsnet(str(path))


def test_voc_classifier_is_the_stage1_model():
    """C in configs/cyc_vgg16_voc.py is configs/cam_vgg16_voc.py's model
    (less what C does not use), so the stage-1 checkpoint loads strictly."""
    from mmcyc.models.segmentors.cycsnet import classifier_model_cfg

    def c_cfg(model):
        cfg = classifier_model_cfg(model)
        cfg.pop('test_cfg', None)
        return cfg

    cyc = Config.fromfile(osp.join(ROOT, 'configs', 'cyc_vgg16_voc.py'))
    cam = Config.fromfile(osp.join(ROOT, 'configs', 'cam_vgg16_voc.py'))
    assert c_cfg(cyc.model.cam_classifier) == c_cfg(cam.model)
    assert cyc.model.backbone.fc6_dilation == \
        cam.model.backbone.fc6_dilation == 1
