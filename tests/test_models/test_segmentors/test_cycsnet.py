import re

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401
from mmcyc.models.utils.cam import mask_cam_by_label, normalize_cam

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


def build_loaded(cfg):
    """Build a CyCSNet and read its classifier checkpoint, as the Runner
    does before training."""
    model = MODELS.build(cfg)
    model.init_weights()
    return model


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


def test_building_reads_no_file(no_file_access, tmp_path):
    absent = str(tmp_path / 'absent.pth')
    for kwargs in (dict(), dict(cam_source='disk'),
                   dict(cam_source='disk', cam_classifier=None)):
        model = MODELS.build(dict(cycsnet_cfg(absent), **kwargs))
        assert model.cam_classifier_checkpoint == absent


def test_config_path_classifier_is_refused(classifier_ckpt):
    with pytest.raises(TypeError, match=r"got the path 'configs/cam.py'.*"
                       r'cam_classifier=\{\{_base_.model\}\}'):
        MODELS.build(dict(cycsnet_cfg(classifier_ckpt[0]),
                          cam_classifier='configs/cam.py'))


def test_init_weights_loads_c_and_f(classifier_ckpt):
    path, classifier = classifier_ckpt
    torch.manual_seed(1)
    model = MODELS.build(cycsnet_cfg(path))
    own = model.backbone.state_dict()
    source = classifier.backbone.state_dict()
    assert not torch.equal(own['conv1a.weight'], source['conv1a.weight'])
    model.init_weights()
    own = model.backbone.state_dict()
    assert 'b7.conv_branch1.weight' not in own
    for key, value in own.items():
        assert torch.equal(value, source[key]), key
    for key, value in model.cam_classifier.state_dict().items():
        assert torch.equal(value, classifier.state_dict()[key]), key
    # C stays frozen after loading
    assert not model.cam_classifier.training
    assert all(not p.requires_grad for p in model.cam_classifier.parameters())


def test_init_from_classifier_false_leaves_f_untouched(classifier_ckpt):
    path, classifier = classifier_ckpt
    torch.manual_seed(1)
    model = MODELS.build(cycsnet_cfg(path, init_from_classifier=False))
    before = {k: v.clone() for k, v in model.state_dict().items()
              if not k.startswith('cam_classifier.')}
    model.init_weights()
    after = model.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key], value), key  # F as built
    for key, value in classifier.state_dict().items():
        assert torch.equal(after['cam_classifier.' + key], value), key


def save_state_dict(path, state_dict):
    torch.save({'state_dict': state_dict, 'meta': {}}, path)
    return str(path)


def test_init_weights_names_the_checkpoint_and_the_keys(classifier_ckpt,
                                                        tmp_path):
    _, classifier = classifier_ckpt
    state = classifier.state_dict()
    missing = save_state_dict(
        tmp_path / 'missing.pth',
        {k: v for k, v in state.items() if k != 'classifier.weight'})
    unexpected = save_state_dict(tmp_path / 'unexpected.pth',
                                 dict(state, extra=torch.zeros(1)))
    mismatched = save_state_dict(
        tmp_path / 'mismatched.pth',
        dict(state, **{'classifier.weight': torch.zeros(4, 8, 1, 1)}))
    for path, match in (
            (missing, r"1 missing keys \['classifier.weight'\]"),
            (unexpected, r"1 unexpected keys \['extra'\]"),
            (mismatched, r'1 shape mismatches \[.classifier.weight: '
             r'checkpoint \(4, 8, 1, 1\) vs model \(4, 256, 1, 1\)')):
        model = MODELS.build(cycsnet_cfg(path))  # building reads nothing
        with pytest.raises(ValueError, match=f'{re.escape(path)} does not '
                           f'match.*{match}'):
            model.init_weights()
    # F alone (cam_source='disk' without C): F's keys and shapes
    no_backbone_key = save_state_dict(
        tmp_path / 'no_conv1a.pth',
        {k: v for k, v in state.items() if k != 'backbone.conv1a.weight'})
    wide_b6 = save_state_dict(
        tmp_path / 'wide_b6.pth',
        dict(state, **{'backbone.b6.conv_branch1.weight':
                       torch.zeros(1, 1, 1, 1)}))
    for path, match in (
            (no_backbone_key, r"1 missing keys \['conv1a.weight'\]"),
            (wide_b6, r'1 shape mismatches \[.b6.conv_branch1.weight: '
             r'checkpoint \(1, 1, 1, 1\) vs model')):
        model = MODELS.build(dict(cycsnet_cfg(path, cam_source='disk'),
                                  cam_classifier=None))
        with pytest.raises(ValueError, match=f'classifier checkpoint '
                           f'{re.escape(path)} does not match the CyCSNet '
                           f'backbone.*{match}'):
            model.init_weights()


def test_gradients_reach_f_and_never_the_frozen_classifier(classifier_ckpt):
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0]))
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
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0])).eval()
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
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0])).eval()
    inputs, samples = pair_batch()
    labels = torch.stack([s.gt_img_label for s in samples[:2]])
    cam = model.cam_a(inputs[:2], labels, (4, 4))
    assert cam.shape == (2, 4, 4, 4)
    assert cam[0, 1].abs().sum() == 0 and cam[1, 0].abs().sum() == 0
    peaks = cam.flatten(2).amax(2)
    assert torch.all(peaks[labels > 0] <= 1) and torch.all(peaks >= 0)


def test_tensor_mode_returns_f_features(classifier_ckpt):
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0])).eval()
    feats = model(torch.randn(1, 3, 32, 32), mode='tensor')
    assert feats.shape == (1, 128, 4, 4)  # 2048 * 0.0625 channels, stride 8
    with pytest.raises(RuntimeError, match='CAMRefiner'):
        model(torch.randn(1, 3, 32, 32), mode='predict')


def test_bad_inputs(classifier_ckpt, tmp_path):
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(8, 3, 7, 7),
                               'fc.weight': torch.zeros(4, 8)}}, other)
    with pytest.raises(ValueError, match='other.pth does not match'):
        build_loaded(cycsnet_cfg(str(other)))
    wide = dict(CLASSIFIER, backbone=dict(CLASSIFIER['backbone'],
                                          widen_factor=0.125))
    wide_model = MODELS.build(wide)
    wide_path = tmp_path / 'wide.pth'
    torch.save({'state_dict': wide_model.state_dict()}, wide_path)
    with pytest.raises(ValueError, match='shape mismatches'):
        build_loaded(dict(cycsnet_cfg(str(wide_path)), cam_classifier=wide))
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0]))
    inputs, samples = pair_batch()
    with pytest.raises(ValueError, match='2N images'):
        model.loss(inputs[:3], samples[:3])
    for s in samples:
        s.gt_shared_label = torch.zeros(4)
    with pytest.raises(ValueError, match='share no class'):
        model.loss(inputs, samples)


# --------------------------------------------------------------------- #
# cam_source='disk': CAM_A from data_sample.gt_cam (LoadCAMFromFile)
def attach_stored_cams(samples, cams):
    """Give the A samples a gt_cam like PackImageLabelInputs does."""
    from mmengine.structures import PixelData
    for sample, cam in zip(samples, cams):
        sample.gt_cam = PixelData(data=cam)


def test_bad_cam_source(classifier_ckpt):
    with pytest.raises(ValueError, match=r"cam_source must be one of .*'cls'"):
        MODELS.build(cycsnet_cfg(classifier_ckpt[0], cam_source='cls'))
    with pytest.raises(ValueError, match='needs cam_classifier'):
        MODELS.build(dict(cycsnet_cfg(classifier_ckpt[0]),
                          cam_classifier=None))
    with pytest.raises(ValueError, match='would be unused'):
        MODELS.build(dict(cycsnet_cfg(classifier_ckpt[0], cam_source='disk',
                                      init_from_classifier=False),
                          cam_classifier=None))


def test_stored_cam_a_matches_the_classifier_path(classifier_ckpt):
    model = build_loaded(
        cycsnet_cfg(classifier_ckpt[0], cam_source='disk')).eval()
    inputs, samples = pair_batch(size=64)
    labels = torch.stack([s.gt_img_label for s in samples[:2]])
    with torch.no_grad():
        raw = model.cam_classifier.cam(inputs[:2])  # (2, 4, 8, 8)
    # what stage 1 stores: the CAM at the image size, normalised, in fp16
    stored = normalize_cam(mask_cam_by_label(
        F.interpolate(raw, size=(64, 64), mode='bilinear',
                      align_corners=False), labels)).half().float()
    attach_stored_cams(samples, stored)
    expected = model.cam_a(inputs[:2], labels, (8, 8))
    cam = model.stored_cam_a(samples[:2], labels, (64, 64), (8, 8))
    assert cam.shape == expected.shape == (2, 4, 8, 8)
    assert cam[0, 1].abs().sum() == 0 and cam[1, 0].abs().sum() == 0
    # x8 bilinear up (stage 1) then psa's 8x8 block average (cam_to_grid)
    # is, per axis, the filter (1/8, 3/4, 1/8) with the border replicated:
    # the disk path is the classifier path blurred by it (each value moves
    # by 1/8 of its second difference per axis, then Eq. 2 renormalises)
    k = torch.tensor([1 / 8, 3 / 4, 1 / 8])
    blurred = F.conv2d(
        F.pad(raw, (1, 1, 1, 1), mode='replicate'),
        (k[:, None] * k[None, :]).expand(4, 1, 3, 3), groups=4)
    # 0.01: fp16 storage, and Eq. 2's eps (1e-5) against the random
    # classifier's tiny peaks (~3e-3) applied once more on the disk path
    assert torch.allclose(
        cam, normalize_cam(mask_cam_by_label(blurred, labels)), atol=0.01)
    # close to the classifier path on average (0.026 here; up to 0.26 at a
    # spike of the random classifier, where the blur takes 1/4 off per axis)
    assert (cam - expected).abs().mean() < 0.05


def test_stored_cams_are_padded_to_the_input_size(classifier_ckpt):
    model = build_loaded(
        cycsnet_cfg(classifier_ckpt[0], cam_source='disk')).eval()
    _, samples = pair_batch()
    labels = torch.stack([s.gt_img_label for s in samples[:2]])
    torch.manual_seed(1)
    small, large = torch.rand(4, 24, 20), torch.rand(4, 40, 36)
    attach_stored_cams(samples, [small, large])
    cam = model.stored_cam_a(samples[:2], labels, (32, 32), (32, 32))
    padded = torch.zeros(2, 4, 32, 32)
    padded[0, :, :24, :20] = small  # bottom / right zero padding
    padded[1] = large[:, :32, :32]  # cropped to the input size
    expected = normalize_cam(mask_cam_by_label(padded, labels))
    assert torch.allclose(cam, expected)


def test_disk_loss_never_runs_the_classifier(classifier_ckpt, monkeypatch):
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0], cam_source='disk'))
    model.train()

    def no_classifier(*args):
        raise AssertionError('C must not run with cam_source="disk"')

    monkeypatch.setattr(model.cam_classifier, 'cam', no_classifier)
    inputs, samples = pair_batch()
    with pytest.raises(ValueError, match='add LoadCAMFromFile'):
        model.loss(inputs, samples)
    cams = torch.zeros(2, 4, 32, 32)
    cams[:, :, 8:24, 8:24] = 1.0  # a confident block for every class
    attach_stored_cams(samples, cams)
    losses = model(inputs, samples, mode='loss')
    assert losses['cyc_num_selected'] > 0
    (losses['loss_cyc'] + losses['loss_cls']).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.backbone.parameters())


def test_disk_without_classifier(classifier_ckpt):
    path, classifier = classifier_ckpt
    model = build_loaded(dict(cycsnet_cfg(path, cam_source='disk'),
                              cam_classifier=None))
    assert model.cam_classifier is None
    assert not any(k.startswith('cam_classifier')
                   for k in model.state_dict())
    source = classifier.backbone.state_dict()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, source[key]), key  # F still from C
    model.train()
    inputs, samples = pair_batch()
    attach_stored_cams(samples, torch.rand(2, 4, 32, 32))
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_cyc'] + losses['loss_cls'])
    with pytest.raises(RuntimeError, match='stored_cam_a'):
        model.cam_a(inputs[:2], torch.ones(2, 4), (4, 4))
    attach_stored_cams(samples, torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match='3 channels'):
        model.loss(inputs, samples)


def test_stored_cam_a_is_psa_average_pooled(classifier_ckpt, monkeypatch):
    """CAM_A comes to F's grid by psa's average pooling, and the head
    selects on it: bilinear point sampling would select other positions."""
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0], cam_source='disk'))
    inputs, samples = pair_batch()  # 32x32 images: F's grid is 4x4
    labels = torch.stack([s.gt_img_label for s in samples[:2]])
    cams = torch.zeros(2, 4, 32, 32)
    cams[:, :, 3:5, 3:5] = 1.0  # only the centre of cell (0, 0): mean 1/16
    cams[:, :, :8, 8:16] = 1.0  # cell (0, 1) but its centre: mean 60/64
    cams[:, :, 3:5, 11:13] = 0.0
    attach_stored_cams(samples, cams)
    seen = {}
    head_loss = model.head.loss

    def spy(feat_a, feat_b, cam_a, shared):
        seen['cam_a'] = cam_a
        return head_loss(feat_a, feat_b, cam_a, shared)

    monkeypatch.setattr(model.head, 'loss', spy)
    model.loss(inputs, samples)
    pooled = F.avg_pool2d(cams, 8)  # (2, 4, 4, 4): 32 is a multiple of 8
    expected = normalize_cam(mask_cam_by_label(pooled, labels))
    assert torch.allclose(seen['cam_a'], expected)
    point = F.interpolate(cams, size=(4, 4), mode='bilinear',
                          align_corners=False)
    # selection (CAM > beta1 = 0.3) of a labelled class: cell (0, 1) only,
    # where point sampling would take cell (0, 0) only
    assert (seen['cam_a'][0, 0] > 0.3).nonzero().tolist() == [[0, 1]]
    assert (point[0, 0] > 0.3).nonzero().tolist() == [[0, 0]]


def test_return_shift_feeds_the_head_two_crops_of_a(classifier_ckpt,
                                                     monkeypatch):
    from mmcyc.models.utils.cycle_views import crop_images
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0], return_shift=1))
    model.eval()  # BN on running statistics: features independent per image
    seen = {}
    real_loss = model.head.loss

    def spy(feat_a, feat_b, cam_a, shared, **kwargs):
        seen.update(kwargs, feat_a=feat_a, feat_b=feat_b, cam_a=cam_a)
        return real_loss(feat_a, feat_b, cam_a, shared, **kwargs)

    monkeypatch.setattr(model.head, 'loss', spy)
    inputs, samples = pair_batch(size=32)
    torch.manual_seed(3)
    start = torch.randint(0, 2, (2, 2))  # what the model draws next: A's
    offsets = torch.cat([start, torch.randint(0, 2, (2, 2)), 1 - start])
    torch.manual_seed(3)
    with torch.no_grad():
        losses = model.loss(inputs, samples)
        crops = crop_images(torch.cat([inputs, inputs[:2]]), offsets * 8,
                            (24, 24))
        feats = model.extract_feat(crops)  # (6, D, 3, 3)
        labels = torch.stack([s.gt_img_label for s in samples[:2]])
        cam = model.cam_a(crops[:2], labels, (3, 3))
    assert torch.equal(seen['return_shift'], offsets[:2] - offsets[4:])
    assert seen['return_shift'].abs().eq(1).all()  # opposite corners
    assert torch.allclose(seen['feat_a'], feats[:2], atol=1e-5)
    assert torch.allclose(seen['feat_b'], feats[2:4], atol=1e-5)
    assert torch.allclose(seen['feat_return'], feats[4:], atol=1e-5)
    assert torch.allclose(seen['cam_a'], cam, atol=1e-6)
    assert torch.isfinite(losses['loss_cyc'])
    # the classification loss sees the crops of A and B
    logits = model.classifier(feats[:4].mean((2, 3), keepdim=True)).flatten(1)
    expected = 0.1 * F.multilabel_soft_margin_loss(
        logits, torch.stack([s.gt_img_label for s in samples]))
    assert torch.allclose(losses['loss_cls'], expected, atol=1e-6)


def test_return_shift_crops_the_stored_cams_like_the_images(classifier_ckpt):
    from mmcyc.models.utils.cycle_views import crop_images
    model = build_loaded(
        cycsnet_cfg(classifier_ckpt[0], return_shift=1, cam_source='disk'))
    inputs, samples = pair_batch(size=32)
    gen = torch.Generator().manual_seed(0)
    for sample in samples:
        sample.gt_cam = PixelData(data=torch.rand(4, 32, 32, generator=gen))
    labels = torch.stack([s.gt_img_label for s in samples[:2]])
    offset = torch.tensor([[8, 0], [0, 8]])
    got = model.stored_cam_a(samples[:2], labels, (32, 32), (3, 3), offset,
                             (24, 24))
    full = torch.stack([s.gt_cam.data for s in samples[:2]])
    cropped = crop_images(full, offset, (24, 24))
    expected = normalize_cam(mask_cam_by_label(
        F.avg_pool2d(cropped, 8), labels))
    assert torch.allclose(got, expected, atol=1e-6)


def test_return_shift_settings_are_checked(classifier_ckpt):
    for key, value in (('return_shift', -1), ('return_shift', 1.5),
                       ('feature_stride', 0)):
        with pytest.raises(ValueError, match=f'model.{key} must be an int'):
            MODELS.build(cycsnet_cfg(classifier_ckpt[0], **{key: value}))
    model = build_loaded(
        cycsnet_cfg(classifier_ckpt[0], return_shift=1, feature_stride=4))
    inputs, samples = pair_batch(size=32)
    with pytest.raises(ValueError, match=r'stride-4 grid \(7, 7\)'):
        model.loss(inputs, samples)
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0], return_shift=4))
    with pytest.raises(ValueError, match='nothing is left'):
        model.loss(inputs, samples)


@pytest.mark.parametrize('return_shift', [0, 1])
def test_target_cells_cam_gives_the_head_the_cam_of_b(classifier_ckpt,
                                                      monkeypatch,
                                                      return_shift):
    from mmcyc.models.utils.cycle_views import crop_images
    cfg = cycsnet_cfg(classifier_ckpt[0], return_shift=return_shift)
    cfg['head']['target_cells'] = 'cam'
    model = build_loaded(cfg)
    model.eval()
    seen = {}
    real_loss = model.head.loss

    def spy(feat_a, feat_b, cam_a, shared, **kwargs):
        seen.update(kwargs, cam_a=cam_a)
        return real_loss(feat_a, feat_b, cam_a, shared, **kwargs)

    monkeypatch.setattr(model.head, 'loss', spy)
    inputs, samples = pair_batch(size=32)
    torch.manual_seed(3)
    start = torch.randint(0, 2, (2, 2))  # the draws of _crop_views
    offsets = torch.cat([start, torch.randint(0, 2, (2, 2))])
    torch.manual_seed(3)
    with torch.no_grad():
        losses = model.loss(inputs, samples)
    labels = torch.stack([s.gt_img_label for s in samples])
    views, grid = inputs, (4, 4)
    if return_shift:
        views, grid = crop_images(inputs, offsets * 8, (24, 24)), (3, 3)
    # B's CAM of its own labels, on the view of B that F saw
    assert torch.allclose(seen['cam_b'],
                          model.cam_a(views[2:], labels[2:], grid), atol=1e-6)
    assert torch.allclose(seen['cam_a'],
                          model.cam_a(views[:2], labels[:2], grid), atol=1e-6)
    assert torch.isfinite(losses['loss_cyc'])
    # the paper's head gets no cam_b
    model = build_loaded(cycsnet_cfg(classifier_ckpt[0]))
    seen.clear()
    real_loss = model.head.loss
    monkeypatch.setattr(model.head, 'loss', spy)
    model.loss(inputs, samples)
    assert 'cam_b' not in seen and 'cam_a' in seen
