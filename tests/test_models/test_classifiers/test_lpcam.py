import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401
from mmcyc.apis import load_stage1_checkpoint
from mmcyc.models.classifiers.lpcam import (lpcam_map,
                                            prototype_probabilities,
                                            select_prototypes)
from mmcyc.utils import load_cam
from mmcyc.utils.state_dict_check import check_state_dict

init_default_scope('mmseg')

TINY_R38 = dict(type='ResNet38', widen_factor=0.0625, out_indices=(3, ),
                norm_eval=False)


def build(type='LPCAM', **kwargs):
    return MODELS.build(
        dict(type=type, backbone=TINY_R38, num_classes=3, **kwargs))


def loop_map(feats, protos, pmask, ctx, cmask):
    """LPCAM's map, position by position, prototype by prototype."""
    n, _, h, w = feats.shape
    out = torch.zeros(n, protos.shape[0], h, w)
    for i in range(n):
        for c in range(protos.shape[0]):
            for y in range(h):
                for x in range(w):
                    f = feats[i, :, y, x]
                    sims = [F.cosine_similarity(f, p, dim=0)
                            for p, m in zip(protos[c], pmask[c]) if m]
                    value = sum(sims) / len(sims) if sims else 0.0
                    ctx_sims = [F.cosine_similarity(f, q, dim=0)
                                for q, m in zip(ctx[c], cmask[c]) if m]
                    if ctx_sims:  # the public code's ReLU
                        value = max(value - sum(ctx_sims) / len(ctx_sims), 0)
                    out[i, c, y, x] = value
    return out


def random_prototypes(seed=0, num_classes=3, k=4, dim=6):
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(num_classes, k, dim, generator=g)
    ctx = torch.randn(num_classes, k, dim, generator=g)
    pmask = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 1]]).bool()
    cmask = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]]).bool()
    return protos, pmask, ctx, cmask


def test_map_matches_loops_with_and_without_context():
    # ReLU features and prototypes (means of them), as ResNet-38's
    torch.manual_seed(0)
    feats = torch.randn(2, 6, 3, 4).relu()
    protos, pmask, ctx, cmask = random_prototypes()
    protos, ctx = protos.abs(), ctx.abs()
    got = lpcam_map(feats, protos, pmask, ctx, cmask)
    expected = loop_map(feats, protos, pmask, ctx, cmask)
    assert got.shape == (2, 3, 3, 4)
    assert torch.allclose(got, expected, atol=1e-5)
    # class 1 has no context prototype: the bare mean similarity
    assert (got[:, 1] > 0).any()
    assert (got[:, 0] == 0).any()  # the context term wins somewhere
    # padding values never count
    protos[~pmask] = 1e3
    ctx[~cmask] = -1e3
    assert torch.allclose(lpcam_map(feats, protos, pmask, ctx, cmask), got,
                          atol=1e-5)


def test_map_of_signed_features_is_not_negative():
    torch.manual_seed(0)
    feats = torch.randn(1, 6, 3, 4)
    protos, pmask, ctx, cmask = random_prototypes()
    got = lpcam_map(feats, protos, pmask, ctx, cmask)
    expected = loop_map(feats, protos, pmask, ctx, cmask)
    assert torch.allclose(got[:, [0, 2]], expected[:, [0, 2]], atol=1e-5)
    # no context: the public code would keep negative similarities
    assert (expected[:, 1] < 0).any()
    assert torch.allclose(got[:, 1], expected[:, 1].clamp(min=0), atol=1e-5)
    assert (got >= 0).all()


def test_prototype_filtering_thresholds():
    # W = identity: the logits are the centre itself, so p_c is a softmax
    # of 3 given numbers
    weight = torch.eye(3)
    centres = torch.zeros(3, 3, 3)
    # class 0: p_0 = e^a / (e^a + 2) for logits (a, 0, 0)
    for k, a in enumerate((3.0, 2.0, -2.0)):
        centres[0, k, 0] = a
    # class 1: (0, b, 0)
    for k, b in enumerate((0.0, math.log(18.0), 5.0)):
        centres[1, k, 1] = b
    probs = prototype_probabilities(centres, weight)
    expected0 = [math.exp(a) / (math.exp(a) + 2) for a in (3.0, 2.0, -2.0)]
    assert torch.allclose(probs[0], torch.tensor(expected0), atol=1e-6)
    assert abs(probs[1, 1].item() - 0.9) < 1e-6  # e^b = 18: 18 / 20
    valid = torch.ones(3, 3, dtype=torch.bool)
    valid[0, 2] = False
    cls_keep = select_prototypes(probs, valid, 0.9)
    # 0.909 > 0.9, 0.787 is not; class 1: 1/3 is not, e^5 / (e^5 + 2) =
    # 0.987 is (0.9 itself, at float precision, is tested below)
    assert cls_keep[0].tolist() == [True, False, False]
    assert cls_keep[1, 0].item() is False and cls_keep[1, 2].item() is True
    ctx_keep = select_prototypes(probs, valid, 0.05, 0.9)
    # 0.787 in (0.05, 0.9); the invalid centre (0.064) is not
    assert ctx_keep[0].tolist() == [False, True, False]
    assert ctx_keep[1, 0].item() is True  # 1/3
    assert ctx_keep[1, 2].item() is False  # 0.987
    # class 2's centres are all zero: p_2 = 1/3, context but not class
    assert torch.allclose(probs[2], torch.full((3, ), 1 / 3))
    assert ctx_keep[2].all() and not cls_keep[2].any()


def test_prototype_filtering_band_is_exclusive():
    probs = torch.tensor([[0.05, 0.0500001, 0.9, 0.8999999, 1.0]])
    valid = torch.ones_like(probs, dtype=torch.bool)
    assert select_prototypes(probs, valid, 0.05, 0.9).tolist() == [
        [False, True, False, True, False]]
    assert select_prototypes(probs, valid, 0.9).tolist() == [
        [False, False, False, False, True]]


def fitted_sets(model, seed=0, n=40):
    """Class sets near each class's classifier row (p_c ~ 1), context sets
    near the sum of two rows (p_c ~ 0.5)."""
    g = torch.Generator().manual_seed(seed)
    w = F.normalize(torch.randn(3, model.in_channels, generator=g), dim=1)
    model.classifier.weight.data = 20 * w[..., None, None]
    cls_sets, ctx_sets = [], []
    for c in range(3):
        noise = 0.05 * torch.randn(n, model.in_channels, generator=g)
        cls_sets.append(w[c] + noise)
        ctx_sets.append(w[c] + w[(c + 1) % 3] + noise)
    return cls_sets, ctx_sets


def test_fit_prototypes_fills_the_buffers():
    model = build(fit_cfg=dict(num_clusters=3))
    cls_sets, ctx_sets = fitted_sets(model)
    stats = model.fit_prototypes(cls_sets, ctx_sets, ['a', 'b', 'c'])
    assert model.class_prototype_mask.all()
    assert model.context_prototype_mask.all()
    for c in range(3):
        # every centre is a mean of some of the class's vectors
        assert torch.allclose(model.class_prototypes[c].mean(0),
                              cls_sets[c].mean(0), atol=0.05)
        assert stats[c]['class_name'] == 'abc'[c]
        assert stats[c]['class_prototypes'] == 3
        assert stats[c]['kmeans_class']['converged']
    # refitting with the same seed gives the same prototypes
    before = model.class_prototypes.clone()
    model.fit_prototypes(cls_sets, ctx_sets)
    assert torch.equal(model.class_prototypes, before)


def test_class_without_prototype(monkeypatch):
    model = build(fit_cfg=dict(num_clusters=2))
    cls_sets, ctx_sets = fitted_sets(model)
    cls_sets[1] = ctx_sets[1]  # p_1 ~ 0.5 < 0.9 for every centre
    with pytest.raises(ValueError, match='class b: no class-set centre'):
        model.fit_prototypes(cls_sets, ctx_sets, ['a', 'b', 'c'])
    messages = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'warning',
                        messages.append)
    model = build(fit_cfg=dict(num_clusters=2,
                               missing_class_prototype='most_confident'))
    cls_sets, ctx_sets = fitted_sets(model)
    cls_sets[1] = ctx_sets[1]
    stats = model.fit_prototypes(cls_sets, ctx_sets, ['a', 'b', 'c'])
    assert stats[1]['class_prototypes'] == 1
    assert model.class_prototype_mask[1].sum() == 1
    assert any('class b' in m for m in messages)
    # an empty class set leaves the class without prototypes: a zero map
    cls_sets[2] = cls_sets[2][:0]
    messages.clear()
    stats = model.fit_prototypes(cls_sets, ctx_sets, ['a', 'b', 'c'])
    assert stats[2]['class_prototypes'] == 0
    assert any('class c has no vector' in m for m in messages)
    with torch.no_grad():
        maps = model.eval()(torch.randn(1, 3, 32, 32), mode='tensor')
    assert (maps[:, 2] == 0).all()
    model = build(fit_cfg=dict(num_clusters=2))
    with pytest.raises(ValueError, match='class c has no vector'):
        model.fit_prototypes(cls_sets, ctx_sets, ['a', 'b', 'c'])


def test_unfitted_model_refuses_to_map():
    model = build().eval()
    with pytest.raises(RuntimeError, match='fit_lpcam'):
        model(torch.randn(1, 3, 32, 32), mode='tensor')
    model.class_prototype_mask[0, 0] = True  # fitted: others map to 0
    assert model(torch.randn(1, 3, 32, 32), mode='tensor')[:, 1:].eq(0).all()


def test_stage1_state_dict_loads(tmp_path):
    torch.manual_seed(0)
    stage1 = build('CAMClassifier')
    path = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': stage1.state_dict(), 'meta': {}}, path)
    model = build(fit_cfg=dict(num_clusters=5))
    load_stage1_checkpoint(model, path)
    for key, value in stage1.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    assert model.class_prototypes.shape == (3, 5, model.in_channels)
    # another model's checkpoint is refused, naming the keys
    other = MODELS.build(dict(type='CAMClassifier', backbone=TINY_R38,
                              num_classes=4))
    torch.save({'state_dict': other.state_dict()}, path)
    with pytest.raises(ValueError, match='classifier.weight'):
        load_stage1_checkpoint(model, path)
    # an LPCAM state dict (weights + prototypes) loads strictly
    fitted = build(fit_cfg=dict(num_clusters=5))
    fitted.class_prototype_mask[:, 0] = True
    check_state_dict(model, fitted.state_dict(), 'LPCAM state dict')
    model.load_state_dict(fitted.state_dict(), strict=True)
    assert model.class_prototype_mask[:, 0].all()


def test_predict_is_lpcam_at_each_scale_in_the_cam_format(tmp_path):
    torch.manual_seed(0)
    model = build(test_cfg=dict(scales=(1.0, 0.5), flip=True)).eval()
    dim = model.in_channels
    protos = torch.rand(3, 12, dim)  # means of ReLU features
    ctx = torch.rand(3, 12, dim)
    pmask = torch.zeros(3, 12, dtype=torch.bool)
    cmask = torch.zeros(3, 12, dtype=torch.bool)
    pmask[:, :3] = True
    cmask[0, :2] = True  # class 2 has no context
    cmask[1, :1] = True
    model.class_prototypes.copy_(protos)
    model.class_prototype_mask.copy_(pmask)
    model.context_prototypes.copy_(ctx)
    model.context_prototype_mask.copy_(cmask)
    x = torch.randn(1, 3, 40, 48)
    s = SegDataSample(metainfo=dict(img_shape=(40, 48), ori_shape=(40, 48),
                                    img_path='a/img7.jpg'))
    s.gt_img_label = torch.tensor([1.0, 0.0, 1.0])
    with torch.no_grad():
        out = model(x, [s], mode='predict')[0]
        total = 0
        for scale in (1.0, 0.5):
            xs = x if scale == 1 else F.interpolate(
                x, size=(20, 24), mode='bilinear', align_corners=False)
            fused = model.extract_feat(xs) + model.extract_feat(
                xs.flip(-1)).flip(-1)
            m = lpcam_map(fused, protos, pmask, ctx, cmask)
            total = total + F.interpolate(m, size=(40, 48), mode='bilinear',
                                          align_corners=False)
    total = total * torch.tensor([1.0, 0.0, 1.0])[None, :, None, None]
    expected = total / (total.flatten(2).amax(2)[..., None, None] + 1e-5)
    assert torch.allclose(out.pred_cam.data, expected[0], atol=1e-5)
    assert model._fuse_flip is False  # reset after predict
    # the one on-disk CAM format (CAMWriterHook, as tools/test.py --cam-dir
    # writes it): labelled classes only, fp16 maps
    from mmcyc.engine.hooks import CAMWriterHook
    assert CAMWriterHook(str(tmp_path)).write(out)
    cams, labels = load_cam(str(tmp_path / 'img7.npz'))
    assert labels.tolist() == [0, 2]
    assert cams.shape == (2, 40, 48)
    with np.load(str(tmp_path / 'img7.npz')) as data:
        assert data['cams'].dtype == np.float16
    assert np.allclose(cams, expected[0, [0, 2]].numpy(), atol=1e-3)
    mask = torch.cat([torch.full((1, 40, 48), 0.2),
                      out.pred_cam.data]).argmax(0)
    assert torch.equal(out.pred_sem_seg.data[0], mask)


@pytest.mark.parametrize('fit_cfg, match', [
    (dict(num_clusterz=3), 'unknown keys'),
    (dict(context_thr=(0.9, 0.05)), 'context_thr'),
    (dict(class_thr=1.0), 'class_thr'),
    (dict(init='kmeans'), 'init'),
    (dict(missing_class_prototype='mean'), 'missing_class_prototype'),
])
def test_bad_fit_cfg(fit_cfg, match):
    with pytest.raises(ValueError, match=match):
        build(fit_cfg=fit_cfg)
