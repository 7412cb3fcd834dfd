import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401
from mmcyc.models import CAMClassifier, SSENetClassifier
from mmcyc.models.losses import scale_equivariance_loss

init_default_scope('mmseg')

TINY_R38 = dict(type='ResNet38', widen_factor=0.0625, out_indices=(3, ),
                norm_eval=False)


def build(type='SSENetClassifier', **kwargs):
    return MODELS.build(dict(type=type, backbone=TINY_R38, num_classes=5,
                             **kwargs))


def sample(labels, shape=(40, 48)):
    s = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape))
    s.gt_img_label = torch.tensor(labels, dtype=torch.float32)
    return s


def test_loss_terms_and_their_sum():
    torch.manual_seed(0)
    model = build(cls_loss_weights=(0.5, 0.25),
                  loss_equivariance=dict(type='ScaleEquivarianceLoss',
                                         loss_weight=2.0))
    model.eval()  # no dropout, BatchNorm fixed: reproducible passes
    assert isinstance(model, SSENetClassifier)
    x = torch.randn(2, 3, 64, 80)
    samples = [sample([1, 0, 0, 1, 0]), sample([0, 0, 1, 0, 0])]
    labels = torch.stack([s.gt_img_label for s in samples])
    losses = model(x, samples, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_cls_s', 'loss_ser', 'cls_acc'}

    # by hand: the reference network's output at both scales, its GAP
    with torch.no_grad():
        def raw(img):
            feats = model.backbone(img)[-1]
            return F.interpolate(F.conv2d(feats, model.classifier.weight),
                                 size=img.shape[2:], mode='bilinear',
                                 align_corners=False)
        cam = raw(x)
        x_s = F.interpolate(x, scale_factor=0.3, mode='bilinear',
                            align_corners=False, recompute_scale_factor=True)
        assert x_s.shape[2:] == (19, 24)
        cam_s = raw(x_s)
        expected = {
            'loss_cls': 0.5 * F.multilabel_soft_margin_loss(
                cam.mean((2, 3)), labels),
            'loss_cls_s': 0.25 * F.multilabel_soft_margin_loss(
                cam_s.mean((2, 3)), labels),
            'loss_ser': 2.0 * scale_equivariance_loss(cam_s, cam, labels),
        }
    for key, value in expected.items():
        assert torch.allclose(losses[key], value, atol=1e-6), key
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.allclose(total, sum(expected.values()), atol=1e-6)
    assert losses['loss_ser'] > 0

    total.backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.backbone.parameters()
               if p.requires_grad)


def test_default_weights_are_the_reference():
    model = build()
    assert model.scale_factor == 0.3
    assert model.cls_loss_weights == (0.5, 0.5)
    assert model.loss_equivariance.loss_weight == 1.0
    assert model.loss_cls.loss_weight == 1.0


def test_checkpoint_loads_strictly_into_cam_classifier_and_predict_is_its():
    torch.manual_seed(0)
    ssenet = build(test_cfg=dict(scales=(1.0, 0.5), flip=True)).eval()
    plain = build(type='CAMClassifier',
                  test_cfg=dict(scales=(1.0, 0.5), flip=True)).eval()
    assert type(plain) is CAMClassifier
    assert ssenet.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(ssenet.state_dict(), strict=True)
    ssenet.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        assert torch.equal(ssenet(x, mode='tensor'), plain(x, mode='tensor'))
        a = ssenet(x, [sample([0, 1, 0, 1, 0])], mode='predict')[0]
        b = plain(x, [sample([0, 1, 0, 1, 0])], mode='predict')[0]
    assert torch.equal(a.pred_cam.data, b.pred_cam.data)
    assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
    assert SSENetClassifier.predict is CAMClassifier.predict
    assert SSENetClassifier.cam is CAMClassifier.cam


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='scale_factor'):
        build(scale_factor=1.0)
    with pytest.raises(ValueError, match='cls_loss_weights'):
        build(cls_loss_weights=(0.5, ))
    with pytest.raises(ValueError, match='cls_loss_weights'):
        build(cls_loss_weights=(0.5, -1))
    with pytest.raises(ValueError, match='names must differ'):
        build(loss_equivariance=dict(type='ScaleEquivarianceLoss',
                                     loss_name='loss_cls'))
    model = build(scale_factor=0.01)
    with pytest.raises(ValueError, match='empty'):
        model(torch.randn(1, 3, 32, 32), [sample([1, 0, 0, 0, 0])],
              mode='loss')
    with pytest.raises(ValueError, match='gt_img_label'):
        build()(torch.randn(1, 3, 32, 32), [SegDataSample()], mode='loss')
