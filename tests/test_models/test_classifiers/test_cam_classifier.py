import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401
from mmcyc.models.utils import class_activation_map, normalize_cam

init_default_scope('mmseg')

TINY_R38 = dict(type='ResNet38', widen_factor=0.0625, out_indices=(3, ),
                norm_eval=False)


def build(backbone=TINY_R38, **kwargs):
    cfg = dict(type='CAMClassifier', backbone=backbone, num_classes=5,
               **kwargs)
    return MODELS.build(cfg)


def sample(labels, shape=(40, 48), img_path=None):
    s = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                    img_path=img_path))
    s.gt_img_label = torch.tensor(labels, dtype=torch.float32)
    return s


def test_tensor_mode_is_eq1_at_stride8():
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        cam = model(x, mode='tensor')
        feats = model.backbone(x)[-1]
    assert cam.shape == (2, 5, 8, 10)
    assert model.in_channels == feats.shape[1] == 256
    expected = F.relu(F.conv2d(feats, model.classifier.weight))
    assert torch.allclose(cam, expected, atol=1e-5)
    assert torch.allclose(cam, class_activation_map(feats, model.classifier.weight),
                          atol=1e-5)


def test_loss_is_eq12_of_pooled_logits():
    torch.manual_seed(0)
    model = build().eval()  # eval: no dropout, so the logits are reproducible
    x = torch.randn(2, 3, 32, 32)
    samples = [sample([1, 0, 0, 1, 0]), sample([0, 0, 1, 0, 0])]
    losses = model(x, samples, mode='loss')
    with torch.no_grad():
        feats = model.backbone(x)[-1]
        logits = model.classifier(feats.mean(dim=(2, 3), keepdim=True)).flatten(1)
    labels = torch.stack([s.gt_img_label for s in samples])
    assert torch.allclose(losses['loss_cls'],
                          F.multilabel_soft_margin_loss(logits, labels), atol=1e-6)
    assert set(losses) == {'loss_cls', 'cls_acc'}
    losses['loss_cls'].backward()
    assert model.classifier.weight.grad is not None
    with pytest.raises(ValueError, match='gt_img_label'):
        model(x, [SegDataSample(), SegDataSample()], mode='loss')


def test_predict_cams_masks_and_resume(tmp_path, monkeypatch):
    """predict computes the CAM and its mask; CAMWriterHook writes it; a
    rerun whose sample carries it back (LoadCAMFromFile, key
    'written_cam') returns it without computing, and is not rewritten."""
    from mmcyc.datasets.transforms import (LoadCAMFromFile,
                                           PackImageLabelInputs)
    from mmcyc.engine.hooks import CAMWriterHook
    torch.manual_seed(0)
    model = build(test_cfg=dict(scales=(1.0, 0.5), flip=True)).eval()
    x = torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        out = model(x, [sample([0, 1, 0, 1, 0], img_path='a/img1.jpg')],
                    mode='predict')[0]
    cam = out.pred_cam.data
    assert cam.shape == (5, 40, 48)
    assert cam[[0, 2, 4]].abs().sum() == 0  # classes not in the label
    assert torch.all(cam <= 1) and torch.all(cam >= 0)
    assert out.pred_cam_labels.tolist() == [0, 1, 0, 1, 0]
    expected_mask = torch.cat([torch.full((1, 40, 48), 0.2), cam]).argmax(0)
    assert torch.equal(out.pred_sem_seg.data[0], expected_mask)
    hook = CAMWriterHook(str(tmp_path))
    assert hook.write(out) and (tmp_path / 'img1.npz').is_file()

    # a second run reads the stored CAM back instead of recomputing it
    steps = [LoadCAMFromFile(str(tmp_path), num_classes=5, skip_missing=True,
                             key='written_cam'), PackImageLabelInputs()]
    results = dict(img_path='a/img1.jpg', img=np.zeros((40, 48, 3), np.uint8),
                   ori_shape=(40, 48), img_shape=(40, 48),
                   img_label=np.array([0, 1, 0, 1, 0], np.float32))
    for step in steps:
        results = step(results)
    monkeypatch.setattr(model, 'cam', lambda *a: pytest.fail('recomputed'))
    with torch.no_grad():
        again = model(x, [results['data_samples']], mode='predict')[0]
    assert torch.allclose(again.pred_cam.data, cam, atol=1e-3)
    assert not hook.write(again)  # read back: not written again
    with pytest.raises(ValueError, match='test_cfg.out_dir is no longer'):
        build(test_cfg=dict(out_dir=str(tmp_path)))


def test_predict_normalises_the_multiscale_sum():
    torch.manual_seed(0)
    model = build(test_cfg=dict(scales=(1.0, ), flip=False)).eval()
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        out = model.predict(x, [sample([1, 1, 0, 0, 0], shape=(32, 40))])[0]
        cam = F.interpolate(model.cam(x), size=(32, 40), mode='bilinear',
                            align_corners=False)
    cam[:, 2:] = 0
    assert torch.allclose(out.pred_cam.data, normalize_cam(cam)[0], atol=1e-5)


@pytest.mark.parametrize('backbone,in_channels', [
    (dict(type='ResNetV1c', depth=18, in_channels=3, base_channels=16,
          out_indices=(3, ), strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
          norm_cfg=dict(type='BN', requires_grad=True),
          contract_dilation=True), 128),
    (dict(type='mmpretrain.ResNet', depth=18, out_indices=(3, )), 512),
])
def test_stock_backbones_mix_with_the_classifier(backbone, in_channels):
    model = build(backbone=backbone, in_channels=in_channels).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        cam = model(x, mode='tensor')
        losses = model(x, [sample([1, 0, 0, 0, 0])], mode='loss')
    assert cam.shape[:2] == (1, 5)
    assert torch.isfinite(losses['loss_cls'])


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(
            dict(type='CAMClassifier', backbone=TINY_R38, num_classes=0))
    with pytest.raises(ValueError, match='dropout_ratio'):
        build(dropout_ratio=1.5)
    with pytest.raises(ValueError, match='label_source'):
        build(test_cfg=dict(label_source='oracle'))
    with pytest.raises(ValueError, match='in_channels'):
        build(backbone=dict(type='mmpretrain.ResNet', depth=18))


def test_misspelled_test_cfg_key_is_refused():
    """``bg_scor=0.5`` must not leave the default 0.2 silently in force."""
    with pytest.raises(ValueError, match=r"test_cfg has unknown keys "
                       r"\['bg_scor'\]; expected some of \['bg_score',"):
        build(test_cfg=dict(bg_scor=0.5))
    assert build(test_cfg=dict(bg_score=0.5)).test_cfg['bg_score'] == 0.5
