import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmcyc.apis.feature_bank_io import (build_feature_bank,
                                        cached_feature_bank,
                                        load_feature_bank, save_feature_bank)
from mmcyc.models.refiners import CAMRefiner, FeatureBank
from mmcyc.models.refiners.cam_refiner import bank_placement
from mmcyc.utils import CAMStore, save_cam

NUM_CLASSES, CHANNELS, FEAT, SIZE = 4, 6, 3, 6
# image labels: class 3 is in no bank image
LABELS = [[0], [1], [0, 1], [0, 2], [2], [1, 2], [0], [0, 1, 2], [2], [1]]
NAMES = [f'img_{i:02d}' for i in range(len(LABELS))]


def multi_hot(classes):
    label = torch.zeros(NUM_CLASSES)
    label[classes] = 1.0
    return label


@pytest.fixture(scope='module')
def bank_data(tmp_path_factory):
    """Features (fp16-exact), stage-1 CAMs on disk and labels of 10 images."""
    root = tmp_path_factory.mktemp('cams')
    gen = torch.Generator().manual_seed(0)
    feats = [
        torch.rand(CHANNELS, FEAT, FEAT, generator=gen).half().float()
        for _ in NAMES
    ]
    labels = torch.stack([multi_hot(c) for c in LABELS])
    for name, classes in zip(NAMES, LABELS):
        cams = torch.rand(len(classes), SIZE, SIZE, generator=gen)
        save_cam(str(root / f'{name}.npz'), cams.numpy(), np.array(classes))
    return str(root), feats, labels


def block_mean(cam, stride=SIZE // FEAT):
    """psa's rule for a CAM whose size is a multiple of the stride: the mean
    of each stride x stride block (written apart from mmcyc's pooling)."""
    num, height, width = cam.shape
    return cam.view(num, height // stride, stride, width // stride,
                    stride).mean((2, 4))  # (C, h, w)


def replicate_cells(grid, size, stride=SIZE // FEAT):
    """Every pixel (y, x) takes cell (y // stride, x // stride)."""
    up = grid.repeat_interleave(stride, -2).repeat_interleave(stride, -1)
    return up[..., :size[0], :size[1]]


def features_fn(feats, calls=None):
    def features(indices):
        if calls is not None:
            calls.extend(indices)
        for i in indices:
            yield feats[i][None]  # (1, D, h, w) is accepted too
    return features


def make_refiner(bank_data, cache_file=None, **kwargs):
    root, feats, labels = bank_data
    kwargs = dict(dict(num_refs=3, alpha=4.0, max_vectors_per_image=None),
                  **kwargs)
    refiner = CAMRefiner(**kwargs)
    cached_feature_bank(refiner, features_fn(feats), NAMES, labels,
                        CAMStore(root), cache_file=cache_file)
    return refiner


def target(seed=7, classes=(0, 2), size=SIZE):
    gen = torch.Generator().manual_seed(seed)
    cam = torch.rand(NUM_CLASSES, size, size, generator=gen) * 0.5
    cam = cam * multi_hot(list(classes))[:, None, None]
    feat = torch.rand(CHANNELS, FEAT, FEAT, generator=gen)
    return cam, feat, multi_hot(list(classes))


def test_build_from_registry():
    refiner = MODELS.build(dict(type='CAMRefiner', num_refs=16, seed=3))
    assert isinstance(refiner, CAMRefiner)
    assert (refiner.num_refs, refiner.alpha, refiner.beta1, refiner.epsilon,
            refiner.bg_score, refiner.max_vectors_per_image,
            refiner.seed) == (16, 20.0, 0.3, 2.0, 0.2, 64, 3)


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_refs=-1), 'num_refs must be an int >= 0, got -1'),
    (dict(num_refs=2.5), 'num_refs .* got 2.5'),
    (dict(alpha=0), 'alpha must be > 0, got 0'),
    (dict(beta1=1.0), r'beta1 must be in \[0, 1\), got 1.0'),
    (dict(epsilon=-2.0), 'epsilon must be > 0, got -2.0'),
    (dict(bg_score=-0.1), 'bg_score must be >= 0, got -0.1'),
    (dict(max_vectors_per_image=0), 'max_vectors_per_image .* got 0'),
    (dict(seed='a'), "seed must be an int, got 'a'"),
    (dict(chunk_size=0), 'chunk_size .* got 0'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CAMRefiner(**kwargs)


def test_bank_contents_match_direct_selection(bank_data):
    root, feats, labels = bank_data
    bank = make_refiner(bank_data).bank
    assert bank.vectors.dtype == torch.float16
    assert bank.num_images == len(NAMES) and bank.channels == CHANNELS
    store = CAMStore(root)
    for m, classes in enumerate(LABELS):
        cam = block_mean(store.load(NAMES[m], NUM_CLASSES))  # (C, 3, 3)
        for c in range(NUM_CLASSES):
            vec, cls = bank.gather(torch.tensor([m]),
                                   torch.arange(NUM_CLASSES) == c)
            assert (cls == c).all()
            want = [feats[m][:, y, x] for y in range(FEAT)
                    for x in range(FEAT)
                    if c in classes and cam[c, y, x] > 0.3]
            assert len(vec) == len(want)
            for got, exp in zip(vec, want):
                assert torch.equal(got.float(), exp)


def test_bank_gather_from_unsorted_vectors():
    vectors = torch.arange(6.).half()[:, None].repeat(1, 2)  # (6, 2)
    image_index = torch.tensor([1, 0, 1, 0, 1, 1])
    classes = torch.tensor([2, 0, 0, 2, 2, 0])
    bank = FeatureBank(['a', 'b'], torch.ones(2, 3, dtype=torch.bool),
                       vectors, image_index, classes)
    vec, cls = bank.gather(torch.tensor([1]), torch.tensor([1, 0, 1]) > 0)
    # image 1: class 0 rows 2, 5 then class 2 rows 0, 4 (stable order)
    assert vec[:, 0].tolist() == [2., 5., 0., 4.]
    assert cls.tolist() == [0, 0, 2, 2]
    vec, cls = bank.gather(torch.tensor([0, 1]), torch.tensor([0, 0, 1]) > 0)
    assert vec[:, 0].tolist() == [3., 0., 4.] and cls.tolist() == [2, 2, 2]


def test_capped_bank_is_seeded_subset(bank_data):
    full = make_refiner(bank_data).bank
    capped = make_refiner(bank_data, max_vectors_per_image=2).bank
    again = make_refiner(bank_data, max_vectors_per_image=2).bank
    assert torch.equal(capped.vectors, again.vectors)
    assert int(capped.seg_count.max()) == 2
    assert torch.equal(capped.seg_count, full.seg_count.clamp(max=2))
    for m in range(len(NAMES)):
        for c in range(NUM_CLASSES):
            mask = torch.arange(NUM_CLASSES) == c
            sub, _ = capped.gather(torch.tensor([m]), mask)
            all_, _ = full.gather(torch.tensor([m]), mask)
            for row in sub:
                assert (all_ == row).all(1).any()


def test_bank_matches_per_target_recomputation(bank_data):
    """Bank path == Algorithm 2 recomputed for the same sampled images.

    The target CAM is at the feature resolution, so Eq. 14 applies literally
    (the bank images' CAMs are at 6x6 and downsampled to select vectors).
    """
    root, feats, labels = bank_data
    refiner = make_refiner(bank_data, num_refs=4, epsilon=2.0, bg_score=0.2)
    cam, feat, label = target(size=FEAT)
    images = refiner.sample_references(label, 'target')
    assert len(images) == 4
    expected = cam.clone()
    store = CAMStore(root)
    for s in images.tolist():  # Alg. 2: image by image, vector by vector
        cam_s = block_mean(store.load(NAMES[s], NUM_CLASSES))  # (C, 3, 3)
        for c in set(LABELS[s]) & {0, 2}:
            for y in range(FEAT):
                for x in range(FEAT):
                    if cam_s[c, y, x] <= 0.3:
                        continue
                    sim = torch.einsum('d,dhw->hw', feats[s][:, y, x], feat)
                    wf = torch.softmax((4.0 * sim / sim.max()).flatten(), 0)
                    wf = wf.view(FEAT, FEAT)
                    take = wf > 0.2 / 2.0
                    expected[c] = torch.where(
                        take, torch.maximum(expected[c], 2.0 * wf),
                        expected[c])
    out = refiner.refine(cam, feat, label, 'target')
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.equal(out, cam)


def test_image_size_cam_is_eq14_per_reference_on_replicated_cells(
        bank_data):
    """A CAM at the image size: Eq. 14 reference by reference, each W^f
    replicated from the 3x3 grid to 6x6 cell by cell (stride 2)."""
    root, feats, _ = bank_data
    refiner = make_refiner(bank_data, num_refs=4)
    cam, feat, label = target(size=SIZE)
    images = refiner.sample_references(label, 'target')
    store = CAMStore(root)
    expected = cam.clone()
    for s in images.tolist():
        cam_s = block_mean(store.load(NAMES[s], NUM_CLASSES))  # (C, 3, 3)
        for c in set(LABELS[s]) & {0, 2}:
            for y, x in torch.nonzero(cam_s[c] > 0.3).tolist():
                sim = torch.einsum('d,dhw->hw', feats[s][:, y, x], feat)
                wf = torch.softmax((4.0 * sim / sim.max()).flatten(), 0)
                up = replicate_cells(wf.view(FEAT, FEAT), (SIZE, SIZE))
                expected[c] = torch.where(
                    up > 0.2 / 2.0, torch.maximum(expected[c], 2.0 * up),
                    expected[c])
    out = refiner.refine(cam, feat, label, 'target')
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.equal(out, cam)


def test_bank_selects_on_average_pooled_cams():
    """psa's average pooling, not bilinear point sampling, decides which
    positions of a bank image are selected."""
    cam = torch.zeros(2, 16, 16)  # (C, H, W) on a 2x2 grid of stride 8
    cam[0, 3:5, 3:5] = 1.0  # only the centre of cell (0, 0): mean 1/16
    cam[0, :8, 8:] = 1.0  # cell (0, 1) everywhere but its centre: 60/64
    cam[0, 3:5, 11:13] = 0.0
    cam[1, 8:, :] = 0.5  # cells (1, 0), (1, 1): 0.5 both ways
    feat = torch.arange(4.).view(1, 2, 2).repeat(3, 1, 1)  # (D=3, 2, 2)
    labels = torch.ones(2)
    point = F.interpolate(cam[None], size=(2, 2), mode='bilinear',
                          align_corners=False)[0]
    assert point[0].tolist() == [[1.0, 0.0], [0.0, 0.0]]  # the centres
    vectors, classes = FeatureBank.select(feat, cam, labels, beta1=0.3)
    # class 0: cell (0, 1) = position 1; class 1: positions 2 and 3
    assert vectors[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert classes.tolist() == [0, 1, 1]
    # a CAM already on the grid is used as it is
    vectors, classes = FeatureBank.select(feat, point, torch.tensor([1., 0]),
                                          beta1=0.3)
    assert vectors[:, 0].tolist() == [0.0] and classes.tolist() == [0]
    # a partial last block counts its padding as zeros: a 12x16 CAM lies on
    # the 2x2 grid of stride 8 with 4 rows of zero padding
    edge = torch.zeros(1, 12, 16)
    edge[0, 8:, :8] = 0.5  # cell (1, 0): 32 pixels of 0.5 / 64 = 0.25
    edge[0, 8:, 8:] = 1.0  # cell (1, 1): 32 / 64 = 0.5
    vectors, classes = FeatureBank.select(feat, edge, torch.ones(1),
                                          beta1=0.3)
    assert vectors[:, 0].tolist() == [3.0]  # cell (1, 1) only
    with pytest.raises(ValueError, match='5x9 map .* 2x2'):
        FeatureBank.select(feat, torch.rand(1, 5, 9), torch.ones(1), 0.3)


def test_only_label_classes_change_and_never_decrease(bank_data):
    refiner = make_refiner(bank_data, num_refs=5)
    cam, feat, label = target(classes=(1, ))
    cam[2] = 0.1  # a class outside y_t with a non-zero map stays
    out = refiner.refine(cam, feat, label, 'target')
    assert (out >= cam).all()
    assert not torch.equal(out[1], cam[1])
    for c in (0, 2, 3):
        assert torch.equal(out[c], cam[c])


def test_sampling_is_seeded(bank_data):
    cam, feat, label = target()
    outs = {}
    for seed in range(4):
        refiner = make_refiner(bank_data, seed=seed)
        first = refiner.refine(cam, feat, label, 'target')
        assert torch.equal(first, refiner.refine(cam, feat, label, 'target'))
        outs[seed] = first
    again = make_refiner(bank_data, seed=0).refine(cam, feat, label, 'target')
    assert torch.equal(outs[0], again)
    assert any(not torch.equal(outs[0], outs[s]) for s in (1, 2, 3))


def test_sampling_candidates(bank_data):
    refiner = make_refiner(bank_data, num_refs=100)
    # all images sharing a class with {1}, but the target itself (in bank)
    images = refiner.sample_references(multi_hot([1]), 'img_02')
    assert images.tolist() == [1, 5, 7, 9]
    refiner = make_refiner(bank_data, num_refs=2)
    images = refiner.sample_references(multi_hot([2]), 'other')
    assert len(images) == 2
    assert all(2 in LABELS[i] for i in images.tolist())


def test_zero_refs_is_identity(bank_data):
    refiner = make_refiner(bank_data, num_refs=0)
    cam, feat, label = target()
    assert torch.equal(refiner.refine(cam, feat, label, 'target'), cam)


def test_chunk_size_gives_same_result(bank_data):
    cam, feat, label = target()
    whole = make_refiner(bank_data, chunk_size=None)
    chunked = make_refiner(bank_data, chunk_size=1)
    assert torch.allclose(
        whole.refine(cam, feat, label, 't'),
        chunked.refine(cam, feat, label, 't'), atol=1e-7)


def test_class_without_references_is_left_unchanged(bank_data):
    refiner = make_refiner(bank_data, num_refs=20)
    cam, feat, label = target(classes=(0, 3))
    cam[3] = 0.05
    out = refiner.refine(cam, feat, label, 'target')
    assert torch.equal(out[3], cam[3])
    assert not torch.equal(out[0], cam[0])
    assert refiner.missing_refs == {3: 1}
    refiner.refine(cam, feat, label, 'target')
    assert refiner.missing_refs == {3: 2}


def test_bad_targets(bank_data):
    refiner = make_refiner(bank_data)
    cam, feat, label = target()
    with pytest.raises(ValueError, match='target image img_x has no class'):
        refiner.refine(cam, feat, torch.zeros(NUM_CLASSES), 'img_x')
    with pytest.raises(ValueError, match='img_y: features have 5 channels'):
        refiner.refine(cam, feat[:5], label, 'img_y')
    with pytest.raises(RuntimeError, match='no feature bank'):
        CAMRefiner().refine(cam, feat, label, 'img_z')


def test_missing_cam_file_names_it(bank_data, tmp_path):
    _, feats, labels = bank_data
    with pytest.raises(FileNotFoundError, match='img_00.npz'):
        cached_feature_bank(CAMRefiner(), features_fn(feats), NAMES,
                            labels, CAMStore(str(tmp_path)))


def test_cached_bank_is_reused_and_checked(bank_data, tmp_path):
    root, feats, labels = bank_data
    cache = str(tmp_path / 'bank.pth')
    first = make_refiner(bank_data, cache_file=cache).bank
    assert osp.isfile(cache) and not osp.exists(cache + '.parts')
    calls = []
    refiner = CAMRefiner(max_vectors_per_image=None)
    bank = cached_feature_bank(refiner, features_fn(feats, calls), NAMES,
                               labels, CAMStore(root), cache_file=cache)
    assert calls == []  # loaded, not recomputed
    assert torch.equal(bank.vectors, first.vectors)
    with pytest.raises(ValueError, match='beta1.*delete it'):
        cached_feature_bank(
            CAMRefiner(beta1=0.5, max_vectors_per_image=None),
            features_fn(feats), NAMES, labels, CAMStore(root),
            cache_file=cache)
    with pytest.raises(ValueError, match='other settings'):
        CAMRefiner(max_vectors_per_image=3).set_bank(first)


def test_bank_build_resumes_from_blocks(bank_data, tmp_path):
    root, feats, labels = bank_data
    parts = str(tmp_path / 'parts')
    whole = build_feature_bank(features_fn(feats), NAMES, labels,
                               CAMStore(root), part_dir=parts, block_size=3)
    assert sorted(os.listdir(parts)) == [f'part_{b:06d}.pth' for b in range(4)]
    os.remove(osp.join(parts, 'part_000002.pth'))
    calls = []
    resumed = build_feature_bank(features_fn(feats, calls), NAMES, labels,
                                 CAMStore(root), part_dir=parts,
                                 block_size=3)
    assert calls == [6, 7, 8]
    assert torch.equal(resumed.vectors, whole.vectors)
    assert torch.equal(resumed.classes, whole.classes)
    saved = str(tmp_path / 'bank.pth')
    save_feature_bank(whole, saved)
    loaded = load_feature_bank(saved)
    assert loaded.names == NAMES and torch.equal(loaded.vectors, whole.vectors)


@pytest.mark.parametrize('device, mode, free, expected', [
    ('cpu', 'auto', None, 'cpu'),  # CPU features: the bank stays, as before
    ('cuda:0', 'auto', 10_000, 'device'),
    ('cuda:0', 'auto', 1_000, 'pinned'),  # 600 > 0.5 * 1000
    ('cuda:0', 'cpu', 10_000, 'cpu'),
])
def test_bank_placement(device, mode, free, expected):
    assert bank_placement(torch.device(device), 600, mode, 0.5,
                          free_bytes=free) == expected


def test_cpu_refinement_leaves_the_bank_on_the_cpu(bank_data):
    cam, feat, label = target()
    refiner = make_refiner(bank_data)
    plain = make_refiner(bank_data, bank_device='cpu')
    assert torch.equal(refiner.refine(cam, feat, label, 't'),
                       plain.refine(cam, feat, label, 't'))
    assert refiner.place_bank('cpu') == 'cpu'
    assert refiner.bank.device.type == 'cpu'
    assert refiner.bank.nbytes >= refiner.bank.vectors.numel() * 2


def test_gather_into_pinned_memory_gives_the_same_vectors(bank_data):
    bank = make_refiner(bank_data).bank
    images, classes = torch.tensor([0, 2]), torch.tensor([1, 0, 1, 1]) > 0
    pinned = bank.gather(images, classes, pin_memory=True)
    plain = bank.gather(images, classes)
    assert torch.equal(pinned[0], plain[0])
    assert torch.equal(pinned[1], plain[1])


@pytest.mark.parametrize('kwargs,match', [
    (dict(bank_device='cuda'), "bank_device must be one of .* got 'cuda'"),
    (dict(bank_memory_fraction=0), 'bank_memory_fraction .* got 0'),
])
def test_bad_bank_device_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CAMRefiner(**kwargs)
