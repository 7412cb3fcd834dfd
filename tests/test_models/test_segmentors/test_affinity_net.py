import math

import numpy as np
import pytest
import torch
from PIL import Image
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401
from mmcyc.models.heads.affinity_embed_head import AffinityEmbedHead
from mmcyc.models.segmentors.affinity_net import AffinityNet
from mmcyc.converters.psa_keys import (convert_psa_state_dict,
                                       psa_backbone_keys)
from mmcyc.models.utils.random_walk import (pair_affinity, pair_indices,
                                            radius_offsets)
from mmcyc.datasets.transforms import (LoadCAMFromFile, LoadPseudoMask,
                                       PackImageLabelInputs)
from mmcyc.utils.cam_io import save_cam
from mmcyc.utils.state_dict_check import check_state_dict_keys

init_default_scope('mmseg')


def model_cfg(**kwargs):
    return dict(
        type='AffinityNet',
        backbone=dict(type='ResNet38', widen_factor=0.0625,
                      out_indices=(0, 1, 3), dropout_b6=0., dropout_b7=0.),
        embed_head=dict(type='AffinityEmbedHead'),
        **kwargs)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MODELS.build(model_cfg()).eval()


def samples_with_labels(labels):
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_aff_label = PixelData(data=label[None])
        samples.append(sample)
    return samples


# --------------------------------------------------------------- head --- #
def test_head_matches_psa_layers():
    head = AffinityEmbedHead()
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    # psa resnet38_aff: f8_3 512->64, f8_4 1024->128, f8_5 4096->256,
    # f9 448->448, all 1x1 without bias.
    assert shapes == {
        'projs.0.weight': (64, 512, 1, 1),
        'projs.1.weight': (128, 1024, 1, 1),
        'projs.2.weight': (256, 4096, 1, 1),
        'fuse.weight': (448, 448, 1, 1),
    }
    feats = [torch.rand(2, c, 3, 4) for c in (512, 1024, 4096)]
    out = head(feats)
    assert out.shape == (2, 448, 3, 4)
    assert out.min() >= -1  # ELU
    projected = [F.elu(p(x)) for p, x in zip(head.projs, feats)]
    assert torch.allclose(out, F.elu(head.fuse(torch.cat(projected, 1))))


def test_head_loss_by_hand():
    # One "from" pixel (row 0, column 4 of a 5x9 map) and its 34 partners.
    # Embedding 0 there and ln 2 elsewhere: every affinity is exactly 0.5.
    head = AffinityEmbedHead(in_channels=(1, ), proj_channels=(1, ))
    embedding = torch.full((1, 1, 5, 9), math.log(2.0))
    embedding[0, 0, 0, 4] = 0.0
    label = torch.full((1, 5, 9), 255)
    label[0, 0, 4] = 0
    offsets = radius_offsets(5)
    for dy, dx in offsets[:10]:
        label[0, dy, 4 + dx] = 0  # 10 bg pairs
    for dy, dx in offsets[10:15]:
        label[0, dy, 4 + dx] = 3  # 5 neg pairs
    losses = head.loss_by_feat(embedding, label)
    assert losses['num_pairs_bg'] == 10 and losses['num_pairs_neg'] == 5
    assert losses['num_pairs_fg'] == 0
    assert torch.isclose(losses['loss_bg'],
                         torch.tensor(-math.log(0.5 + 1e-5) / 4))
    assert torch.isclose(losses['loss_neg'],
                         torch.tensor(-math.log(1 + 1e-5 - 0.5) / 2))
    assert losses['loss_fg'] == 0
    # The same pixel as a class: the 10 former bg pairs become neg pairs,
    # the 5 class-3 partners fg pairs.
    label[0, 0, 4] = 3
    losses = head.loss_by_feat(embedding, label)
    assert losses['num_pairs_fg'] == 5 and losses['num_pairs_neg'] == 10
    assert torch.isclose(losses['loss_fg'],
                         torch.tensor(-math.log(0.5 + 1e-5) / 4))


def test_head_loss_against_brute_force_and_empty_sets():
    gen = torch.Generator().manual_seed(3)
    head = AffinityEmbedHead(in_channels=(1, ), proj_channels=(1, ),
                             loss_weights=(1.0, 2.0, 3.0))
    embedding = torch.rand(2, 3, 7, 11, generator=gen)
    label = torch.randint(0, 3, (2, 7, 11), generator=gen)
    label[torch.rand(2, 7, 11, generator=gen) < 0.2] = 255
    losses = head.loss_by_feat(embedding, label)
    sums = dict(bg=0.0, fg=0.0, neg=0.0)
    counts = dict(bg=0, fg=0, neg=0)
    for n in range(2):
        for y in range(3):
            for x in range(4, 7):
                for dy, dx in radius_offsets(5):
                    li, lj = int(label[n, y, x]), int(label[n, y + dy, x + dx])
                    a = math.exp(-float((embedding[n, :, y, x] - embedding[
                        n, :, y + dy, x + dx]).abs().mean()))
                    if li == 255 or lj == 255:
                        continue
                    kind = 'neg' if li != lj else ('bg' if li == 0 else 'fg')
                    term = -math.log(1 + 1e-5 - a) if kind == 'neg' else \
                        -math.log(a + 1e-5)
                    sums[kind] += term
                    counts[kind] += 1
    for weight, kind in zip((1.0, 2.0, 3.0), ('bg', 'fg', 'neg')):
        assert counts[kind] > 0
        assert losses[f'num_pairs_{kind}'] == counts[kind]
        assert math.isclose(float(losses[f'loss_{kind}']),
                            weight * sums[kind] / counts[kind], rel_tol=1e-5)
    # All ignored: every term 0, not NaN, and backward works.
    embedding.requires_grad_(True)
    losses = head.loss_by_feat(embedding, torch.full((2, 7, 11), 255))
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    assert total == 0
    total.backward()
    assert torch.isfinite(embedding.grad).all()


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_channels=(8, 16), proj_channels=(4, )), 'same length'),
    (dict(loss_weights=(1.0, 1.0)), 'loss_weights'),
    (dict(loss_weights=(1.0, -1.0, 1.0)), 'loss_weights'),
    (dict(out_channels=0), 'out_channels'),
    (dict(radius=1), 'radius'),
])
def test_head_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AffinityEmbedHead(**kwargs)


# -------------------------------------------------------------- model --- #
def test_tensor_mode_and_width(model):
    assert isinstance(model, AffinityNet)
    assert model.embed_head.in_channels == (32, 64, 256)
    out = model(torch.rand(2, 3, 96, 80))
    assert out.shape == (2, 448, 12, 10)


def test_psa_aff_checkpoint_loads_without_missing_keys(model):
    own = model.state_dict()
    gen = torch.Generator().manual_seed(1)
    psa = {k: torch.rand(own['backbone.' + k].shape, generator=gen)
           for k in psa_backbone_keys()}
    heads = dict(f8_3='projs.0', f8_4='projs.1', f8_5='projs.2', f9='fuse')
    for psa_name, name in heads.items():
        psa[f'{psa_name}.weight'] = torch.rand(
            own[f'embed_head.{name}.weight'].shape, generator=gen)
    converted, report = convert_psa_state_dict(psa)
    assert report.layout == 'aff' and not report.unknown
    missing, unexpected = check_state_dict_keys(model, converted)
    assert missing == [] and unexpected == []
    fresh = MODELS.build(model_cfg())
    fresh.load_state_dict(converted, strict=True)
    assert torch.equal(fresh.embed_head.fuse.weight, psa['f9.weight'])
    assert torch.equal(fresh.backbone.b7.conv_branch1.weight,
                       psa['b7.conv_branch1.weight'])


def test_loss_mode_uses_gt_aff_label(model):
    gen = torch.Generator().manual_seed(2)
    inputs = torch.rand(2, 3, 96, 96, generator=gen)
    labels = torch.randint(0, 3, (2, 12, 12), generator=gen)
    labels[:, :3] = 255
    losses = model(inputs, samples_with_labels(labels), mode='loss')
    assert set(losses) == {'loss_bg', 'loss_fg', 'loss_neg', 'num_pairs_bg',
                           'num_pairs_fg', 'num_pairs_neg'}
    expected = model.embed_head.loss_by_feat(model(inputs), labels)
    for key, value in expected.items():
        assert torch.allclose(losses[key], value)
    # A label map smaller than the embedding is padded with the ignore value.
    small = model(inputs, samples_with_labels(labels[:, :10, :11]),
                  mode='loss')
    padded = labels.clone()
    padded[:, 10:] = 255
    padded[:, :, 11:] = 255
    reference = model.embed_head.loss_by_feat(model(inputs), padded)
    for key, value in reference.items():
        assert torch.allclose(small[key], value)


def test_loss_backward_reaches_the_head():
    torch.manual_seed(0)
    net = MODELS.build(model_cfg()).train()
    labels = torch.randint(0, 2, (1, 12, 12))
    losses = net(torch.rand(1, 3, 96, 96), samples_with_labels(labels),
                 mode='loss')
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    assert net.embed_head.fuse.weight.grad.abs().sum() > 0
    assert net.embed_head.projs[0].weight.grad.abs().sum() > 0


def test_loss_bad_labels(model):
    inputs = torch.rand(1, 3, 96, 96)
    with pytest.raises(ValueError, match='gt_aff_label'):
        model(inputs, [SegDataSample()], mode='loss')
    with pytest.raises(ValueError, match='larger'):
        model(inputs, samples_with_labels(torch.zeros(1, 13, 12)),
              mode='loss')


@torch.no_grad()
def reference_propagation(model, image, cam, bg_alpha=16.0):
    """psa ``infer_aff.py`` with a dense transition matrix squared 8 times."""
    height, width = image.shape[2:]
    pad_h, pad_w = -height % 8, -width % 8
    scores = torch.cat([(1 - cam.max(0, keepdim=True)[0])**bg_alpha, cam])
    scores = F.avg_pool2d(F.pad(scores, (0, pad_w, 0, pad_h)), 8, 8)
    embedding = model(F.pad(image, (0, pad_w, 0, pad_h)))  # (1, D, h, w)
    h, w = embedding.shape[2:]
    offsets = radius_offsets(5)
    aff = pair_affinity(embedding, offsets).reshape(-1).double()
    ind_from, ind_to = pair_indices(h, w, offsets)
    ind_from = ind_from.expand_as(ind_to).reshape(-1)
    ind_to = ind_to.reshape(-1)
    mat = torch.eye(h * w, dtype=torch.float64)
    mat[ind_from, ind_to] = aff
    mat[ind_to, ind_from] = aff
    mat = mat**8
    trans = mat / mat.sum(0, keepdim=True)
    for _ in range(8):
        trans = trans @ trans
    walked = (scores.reshape(scores.shape[0], -1).double() @ trans).float()
    walked = F.interpolate(walked.reshape(1, -1, h, w),
                           size=(height + pad_h, width + pad_w),
                           mode='bilinear', align_corners=False)
    return walked[0, :, :height, :width]


def test_propagate_cam_matches_psa_infer_aff(model):
    gen = torch.Generator().manual_seed(4)
    image = torch.rand(1, 3, 60, 70, generator=gen)
    cam = torch.zeros(20, 60, 70)
    cam[6, 10:40, 5:30] = torch.rand(30, 25, generator=gen)
    cam[14, 30:60, 35:70] = torch.rand(30, 35, generator=gen)
    out = model.propagate_cam(image, cam)
    assert out.shape == (21, 60, 70)
    expected = reference_propagation(model, image, cam)
    assert torch.allclose(out, expected, rtol=1e-4,
                          atol=1e-4 * float(expected.abs().max()))


def packed_samples(names, shape, cam_dir, mask_dir=None):
    """Samples as AffinityNet's test pipeline packs them: the CAM files of
    ``cam_dir`` (LoadCAMFromFile) and the PNGs of ``mask_dir``
    (LoadPseudoMask) come with each sample; the model reads no file."""
    steps = [LoadCAMFromFile(cam_dir), LoadPseudoMask(mask_dir),
             PackImageLabelInputs()]
    samples = []
    for name in names:
        results = dict(img_path=f'/data/JPEGImages/{name}.jpg',
                       img=np.zeros((*shape, 3), np.uint8), ori_shape=shape,
                       img_shape=shape, img_label=np.zeros(20, np.float32))
        for step in steps:
            results = step(results)
        samples.append(results['data_samples'])
    return samples


def test_predict_walks_the_cams_of_the_samples(model, tmp_path):
    gen = torch.Generator().manual_seed(5)
    cams = np.zeros((2, 60, 70), np.float32)
    cams[0, 5:30, 5:30] = 0.9
    cams[1, 35:58, 40:68] = 0.8
    save_cam(str(tmp_path / 'img7.npz'), cams, np.array([2, 11]))
    inputs = torch.zeros(1, 3, 64, 72)  # batch padded to 64 x 72
    inputs[:, :, :60, :70] = torch.rand(1, 3, 60, 70, generator=gen)
    sample, = packed_samples(['img7'], (60, 70), str(tmp_path))
    out = model(inputs, [sample], mode='predict')
    mask = out[0].pred_sem_seg.data
    assert mask.shape == (1, 60, 70)
    assert set(mask.unique().tolist()) <= {0, 3, 12}
    dense = torch.zeros(20, 60, 70)
    dense[[2, 11]] = torch.from_numpy(cams)
    expected = model.propagate_cam(inputs[:, :, :60, :70], dense).argmax(0)
    assert torch.equal(mask[0], expected)


def test_predict_returns_masks_read_back(model, tmp_path):
    """With LoadPseudoMask's folder set, an image whose PNG exists is read
    back, the others are walked as without it; a stale PNG is an error."""
    cams = np.zeros((1, 40, 48), np.float32)
    cams[0, 5:30, 5:30] = 0.9
    for name in ('a', 'b'):
        save_cam(str(tmp_path / 'cams' / f'{name}.npz'), cams, np.array([6]))
    masks = tmp_path / 'masks'
    masks.mkdir()
    written = np.zeros((40, 48), np.uint8)
    written[10:20, 30:40] = 9  # not what the walk would give
    Image.fromarray(written).save(masks / 'a.png')
    inputs = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(1))

    def predict(mask_dir):
        samples = packed_samples(['a', 'b'], (40, 48), str(tmp_path / 'cams'),
                                 mask_dir)
        return [s.pred_sem_seg.data[0]
                for s in model(inputs, samples, mode='predict')]

    walked = predict(None)
    resumed = predict(str(masks))
    assert torch.equal(resumed[0], torch.from_numpy(written).long())
    assert not torch.equal(resumed[0], walked[0])
    assert torch.equal(resumed[1], walked[1])  # b.png absent: walked
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / 'a.png')
    with pytest.raises(ValueError, match='a.png has size'):
        predict(str(masks))
    Image.fromarray(np.full((40, 48), 21, np.uint8)).save(masks / 'a.png')
    with pytest.raises(ValueError, match='a.png has label 21'):
        predict(str(masks))


def test_model_reads_no_file(model):
    """The folders moved from test_cfg to the test pipeline: naming one
    in test_cfg is an error that says where it went."""
    for key in ('cam_dir', 'mask_dir'):
        with pytest.raises(ValueError, match=f'test_cfg.{key} is no longer '
                           'a model setting.*LoadCAMFromFile'):
            MODELS.build(model_cfg(test_cfg={key: '/some/folder'}))


def test_model_bad_arguments(model):
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(model_cfg(num_classes=0))
    with pytest.raises(ValueError, match='bg_alpha'):
        MODELS.build(model_cfg(test_cfg=dict(bg_alpha=0)))
    with pytest.raises(ValueError, match='beta'):
        MODELS.build(model_cfg(test_cfg=dict(
            rw=dict(type='AffinityRWPostprocessor', beta=-1))))
    with pytest.raises(ValueError, match='cam_dir'):
        model(torch.rand(1, 3, 64, 64), [SegDataSample()], mode='predict')
    with pytest.raises(ValueError, match='does not fit'):
        model.propagate_cam(torch.rand(1, 3, 64, 64), torch.rand(20, 32, 32))
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(torch.rand(1, 3, 64, 64), mode='feat')


def test_voc_config_builds_with_psa_hyper_parameters():
    import os.path as osp

    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings
    repo = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
    cfg = Config.fromfile(osp.join(repo, 'configs', 'aff_resnet38_voc.py'))
    import_modules_from_strings(**cfg.custom_imports)
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.crop_size == (448, 448)
    assert cfg.train_cfg.max_epochs == 8
    assert cfg.optim_wrapper.optimizer.lr == 0.1
    assert cfg.optim_wrapper.optimizer.weight_decay == 5e-4
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        custom_keys={'embed_head': dict(lr_mult=10.0)})
    model_cfg = cfg.model.to_dict()
    model_cfg['backbone'].update(widen_factor=0.0625, init_cfg=None)
    net = MODELS.build(model_cfg)
    assert isinstance(net, AffinityNet)
    assert (net.rw.radius, net.rw.beta, net.rw.steps) == (5, 8.0, 256)
    assert net.test_cfg['bg_alpha'] == 16
    assert net.embed_head.loss_weights == (0.25, 0.25, 0.5)
    # psa's labels: both score stacks through its dense CRF, once per image
    load_scores = cfg.train_dataloader.dataset.pipeline[1]
    assert load_scores.type == 'LoadAffinityScores'
    assert load_scores.crf == dict(type='DenseCRF')
    assert load_scores.crf_cache_dir


def test_misspelled_test_cfg_key_is_refused():
    with pytest.raises(ValueError, match=r"test_cfg has unknown keys "
                       r"\['bg_apha'\]"):
        MODELS.build(model_cfg(test_cfg=dict(bg_apha=8.0)))
