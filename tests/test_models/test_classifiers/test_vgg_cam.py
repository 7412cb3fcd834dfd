# Copyright (c) mmcyc contributors. All rights reserved.
"""psa's VGG-16 classifier: CAMClassifier with VGG16d and sqrt(relu(.))."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401
from mmcyc.models.utils.cam import (class_activation_map, mask_cam_by_label,
                                    normalize_cam)

init_default_scope('mmseg')

TINY_VGG = dict(type='VGG16d', widen_factor=0.125, out_indices=(2, ))


def build(**kwargs):
    cfg = dict(type='CAMClassifier', backbone=TINY_VGG, num_classes=3,
               cam_activation='sqrt_relu')
    cfg.update(kwargs)
    return MODELS.build(cfg)


def sample(labels, shape):
    s = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape))
    s.gt_img_label = torch.tensor(labels, dtype=torch.float32)
    return s


def test_sqrt_relu_by_hand():
    # f at two positions, D = 2; W for C = 2 classes
    features = torch.tensor([[[[1., 2.]], [[3., -1.]]]])  # (1, 2, 1, 2)
    weight = torch.tensor([[1., 1.], [-1., 0.]])  # (2, 2)
    # class 0: 1 + 3 = 4, 2 - 1 = 1; class 1: -1, -2
    expected = torch.tensor([[[[2., 1.]], [[0., 0.]]]])
    assert torch.equal(
        class_activation_map(features, weight, activation='sqrt_relu'),
        expected)
    assert torch.equal(
        class_activation_map(features, weight),
        torch.tensor([[[[4., 1.]], [[0., 0.]]]]))
    with pytest.raises(ValueError, match="'sigmoid'"):
        class_activation_map(features, weight, activation='sigmoid')


def test_tensor_mode_is_sqrt_of_relu_of_fc8():
    """psa vgg16_cls.forward_cam: sqrt(relu(fc8(conv5fc)))."""
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, 41, 50)
    with torch.no_grad():
        cam = model(x, mode='tensor')
        (feats, ) = model.backbone(x)
    assert cam.shape == (2, 3, 6, 7)
    assert model.in_channels == feats.shape[1] == 128
    expected = torch.sqrt(F.relu(F.conv2d(feats, model.classifier.weight)))
    assert torch.allclose(cam, expected, atol=1e-6)


def test_predict_sums_sqrt_cams_over_scales():
    """psa infer_cls.py: each scale's sqrt CAM upsampled, summed, divided by
    the per-class maximum."""
    torch.manual_seed(0)
    model = build(test_cfg=dict(scales=(1.0, 0.5), flip=False)).eval()
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        out = model.predict(x, [sample([1, 0, 1], (32, 40))])[0]
        total = 0
        for size in ((32, 40), (16, 20)):
            scaled = F.interpolate(x, size=size, mode='bilinear',
                                   align_corners=False)
            logits = F.conv2d(model.backbone(scaled)[0],
                              model.classifier.weight)
            total = total + F.interpolate(
                torch.sqrt(F.relu(logits)), size=(32, 40), mode='bilinear',
                align_corners=False)
    total[:, 1] = 0
    assert torch.allclose(out.pred_cam.data, normalize_cam(total)[0],
                          atol=1e-5)


def test_relu_is_the_default_and_bad_values_are_refused():
    assert build(cam_activation='relu').cam_activation == 'relu'
    cfg = dict(type='CAMClassifier', backbone=TINY_VGG, num_classes=3)
    assert MODELS.build(cfg).cam_activation == 'relu'
    with pytest.raises(ValueError, match=r"cam_activation .*'sqrt'"):
        build(cam_activation='sqrt')


def test_logits_do_not_use_the_cam_activation():
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        (feats, ) = model.backbone(x)
        expected = F.conv2d(feats.mean((2, 3), keepdim=True),
                            model.classifier.weight).flatten(1)
        assert torch.allclose(model.logits(x), expected, atol=1e-6)


def test_cycsnet_cam_a_uses_the_classifier_activation(tmp_path):
    """CAM_A of a VGG CyCSNet is C's sqrt CAM, masked and normalised."""
    torch.manual_seed(0)
    classifier = build()
    path = tmp_path / 'cls.pth'
    torch.save({'state_dict': classifier.state_dict(), 'meta': {}}, path)
    model = MODELS.build(
        dict(type='CyCSNet', backbone=TINY_VGG,
             head=dict(type='CycleConsistencyHead', beta1=0.3),
             cam_classifier=dict(type='CAMClassifier', backbone=TINY_VGG,
                                 num_classes=3, cam_activation='sqrt_relu'),
             cam_classifier_checkpoint=str(path), num_classes=3))
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    labels = torch.tensor([[1., 0, 1], [0., 1, 0]])
    with torch.no_grad():
        cam = model.cam_a(x, labels, (4, 4))
        (feats, ) = classifier.eval().backbone(x)
        raw = torch.sqrt(F.relu(F.conv2d(feats, classifier.classifier.weight)))
    assert torch.allclose(cam, normalize_cam(mask_cam_by_label(raw, labels)),
                          atol=1e-5)
