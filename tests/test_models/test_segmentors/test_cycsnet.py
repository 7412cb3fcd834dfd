import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401

init_default_scope('mmseg')

CLASSIFIER = dict(
    type='CAMClassifier',
    backbone=dict(type='ResNet38', widen_factor=0.0625, out_indices=(3, ),
                  norm_eval=False),
    num_classes=4)


def cycsnet_cfg(checkpoint, **kwargs):
    return dict(
        type='CyCSNet',
        backbone=dict(type='ResNet38', widen_factor=0.0625, with_b7=False,
                      out_indices=(2, ), norm_eval=False),
        head=dict(type='CycleConsistencyHead', beta1=0.3),
        cam_classifier=CLASSIFIER,
        cam_classifier_checkpoint=checkpoint,
        num_classes=4,
        **kwargs)


@pytest.fixture
def classifier_ckpt(tmp_path):
    torch.manual_seed(0)
    classifier = MODELS.build(CLASSIFIER)
    path = tmp_path / 'cls.pth'
    torch.save({'state_dict': classifier.state_dict(), 'meta': {}}, path)
    return str(path), classifier


def pair_batch(n=2, size=32):
    inputs = torch.randn(2 * n, 3, size, size)
    samples = []
    labels = [torch.tensor([1., 0, 1, 0]), torch.tensor([0., 1, 0, 0])]
    partners = [torch.tensor([1., 0, 0, 1]), torch.tensor([0., 1, 1, 0])]
    for label in labels[:n] + partners[:n]:
        s = SegDataSample()
        s.gt_img_label = label
        samples.append(s)
    for i in range(n):
        shared = labels[i] * partners[i]
        samples[i].gt_shared_label = shared
        samples[n + i].gt_shared_label = shared
    return inputs, samples


def test_f_is_initialised_from_the_classifier(classifier_ckpt):
    path, classifier = classifier_ckpt
    model = MODELS.build(cycsnet_cfg(path))
    own = model.backbone.state_dict()
    source = classifier.backbone.state_dict()
    assert 'b7.conv_branch1.weight' not in own
    for key, value in own.items():
        assert torch.equal(value, source[key]), key
    for key, value in model.cam_classifier.state_dict().items():
        assert torch.equal(value, classifier.state_dict()[key]), key


def test_gradients_reach_f_and_never_the_frozen_classifier(classifier_ckpt):
    model = MODELS.build(cycsnet_cfg(classifier_ckpt[0]))
    model.train()
    assert not model.cam_classifier.training
    assert model.backbone.training
    inputs, samples = pair_batch()
    losses = model(inputs, samples, mode='loss')
    assert {'loss_cyc', 'loss_cls', 'cyc_num_selected', 'cyc_wb_mean'} <= \
        set(losses)
    total = losses['loss_cyc'] + losses['loss_cls']
    total.backward()
    grads = [p.grad for p in model.backbone.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert model.classifier.weight.grad is not None
    assert all(p.grad is None for p in model.cam_classifier.parameters())
    assert all(not p.requires_grad for p in model.cam_classifier.parameters())


def test_loss_cls_is_lambda_times_eq12(classifier_ckpt):
    model = MODELS.build(cycsnet_cfg(classifier_ckpt[0])).eval()
    inputs, samples = pair_batch()
    with torch.no_grad():
        losses = model.loss(inputs, samples)
        feats = model.backbone(inputs)[-1]
        logits = model.classifier(feats.mean((2, 3), keepdim=True)).flatten(1)
    labels = torch.stack([s.gt_img_label for s in samples])
    expected = 0.1 * torch.nn.functional.multilabel_soft_margin_loss(
        logits, labels)
    assert torch.allclose(losses['loss_cls'], expected, atol=1e-6)


def test_cam_a_is_the_normalised_label_masked_cam(classifier_ckpt):
    model = MODELS.build(cycsnet_cfg(classifier_ckpt[0])).eval()
    inputs, samples = pair_batch()
    labels = torch.stack([s.gt_img_label for s in samples[:2]])
    cam = model.cam_a(inputs[:2], labels, (4, 4))
    assert cam.shape == (2, 4, 4, 4)
    assert cam[0, 1].abs().sum() == 0 and cam[1, 0].abs().sum() == 0
    peaks = cam.flatten(2).amax(2)
    assert torch.all(peaks[labels > 0] <= 1) and torch.all(peaks >= 0)


def test_tensor_mode_returns_f_features(classifier_ckpt):
    model = MODELS.build(cycsnet_cfg(classifier_ckpt[0])).eval()
    feats = model(torch.randn(1, 3, 32, 32), mode='tensor')
    assert feats.shape == (1, 128, 4, 4)  # 2048 * 0.0625 channels, stride 8
    with pytest.raises(RuntimeError, match='CAMRefiner'):
        model(torch.randn(1, 3, 32, 32), mode='predict')


def test_bad_inputs(classifier_ckpt, tmp_path):
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(8, 3, 7, 7),
                               'fc.weight': torch.zeros(4, 8)}}, other)
    with pytest.raises(ValueError, match='other.pth does not match'):
        MODELS.build(cycsnet_cfg(str(other)))
    wide = dict(CLASSIFIER, backbone=dict(CLASSIFIER['backbone'],
                                          widen_factor=0.125))
    wide_model = MODELS.build(wide)
    wide_path = tmp_path / 'wide.pth'
    torch.save({'state_dict': wide_model.state_dict()}, wide_path)
    with pytest.raises(ValueError, match='shape mismatches'):
        MODELS.build(dict(cycsnet_cfg(str(wide_path)), cam_classifier=wide))
    model = MODELS.build(cycsnet_cfg(classifier_ckpt[0]))
    inputs, samples = pair_batch()
    with pytest.raises(ValueError, match='2N images'):
        model.loss(inputs[:3], samples[:3])
    for s in samples:
        s.gt_shared_label = torch.zeros(4)
    with pytest.raises(ValueError, match='share no class'):
        model.loss(inputs, samples)
