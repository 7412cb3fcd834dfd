import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, TRANSFORMS
from PIL import Image

import mmcyc  # noqa: F401
from mmcyc.datasets.transforms.load_affinity_scores import \
    LoadAffinityScores
from mmcyc.datasets.transforms.pack_affinity_inputs import \
    PackAffinityInputs
from mmcyc.models.segmentors.affinity_net import AffinityNet  # noqa: F401
from mmcyc.models.utils.affinity_labels import cam_to_affinity_label
from mmcyc.utils.cam_io import save_cam

init_default_scope('mmseg')


@pytest.fixture
def image_and_cam(tmp_path):
    """A 64 x 96 image and its CAM file: two classes and a weak rim."""
    rng = np.random.default_rng(0)
    img_path = tmp_path / 'img1.jpg'
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(
        img_path)
    cams = np.zeros((2, 64, 96), np.float32)
    cams[0, 2:40, 3:50] = 0.9
    cams[0, 40:46, 3:50] = 0.15  # unconfident
    cams[1, 36:62, 52:94] = 0.8
    cam_dir = tmp_path / 'cams'
    save_cam(str(cam_dir / 'img1.npz'), cams, np.array([4, 14]))
    return dict(img_path=str(img_path), seg_fields=[]), str(cam_dir), cams


def test_registered_in_mmseg():
    assert type(TRANSFORMS.build(dict(type='LoadAffinityScores',
                                      cam_dir='x'))) is LoadAffinityScores
    assert type(TRANSFORMS.build(dict(
        type='PackAffinityInputs'))) is PackAffinityInputs


def test_pipeline_gives_the_label_map_of_the_flipped_cam(image_and_cam):
    info, cam_dir, cams = image_and_cam
    pipeline = Compose([
        dict(type='LoadCheckedImageFromFile'),
        LoadAffinityScores(cam_dir),
        dict(type='RandomFlip', prob=1.0),
        PackAffinityInputs(stride=8),
    ])
    packed = pipeline(dict(info))
    label = packed['data_samples'].gt_aff_label.data
    assert label.shape == (1, 8, 12) and label.dtype == torch.int64
    expected = cam_to_affinity_label(
        torch.from_numpy(cams[:, :, ::-1].copy()), torch.tensor([4, 14]))
    assert torch.equal(label[0], expected)
    assert set(label.unique().tolist()) == {0, 5, 15, 255}
    assert packed['inputs'].shape == (3, 64, 96)


def test_crop_moves_scores_with_the_image(image_and_cam):
    info, cam_dir, cams = image_and_cam
    results = LoadAffinityScores(cam_dir)(
        dict(info, img=np.zeros((64, 96, 3), np.uint8)))
    assert results['aff_scores'].shape == (64, 96, 6)
    assert results['seg_fields'] == ['aff_scores']
    assert info['seg_fields'] == []  # the input's list is not modified
    crop = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(24, 32)))
    results = crop(results)
    assert results['aff_scores'].shape == (24, 32, 6)
    assert results['img'].shape[:2] == (24, 32)


def test_bad_inputs(image_and_cam, tmp_path):
    info, cam_dir, _ = image_and_cam
    with pytest.raises(ValueError, match='alpha_low'):
        LoadAffinityScores(cam_dir, alpha_low=40)
    with pytest.raises(ValueError, match='before any resize'):
        LoadAffinityScores(cam_dir)(dict(info, img=np.zeros((20, 24, 3))))
    with pytest.raises(FileNotFoundError, match='img1'):
        LoadAffinityScores(str(tmp_path / 'none'))(
            dict(info, img=np.zeros((64, 96, 3))))
    with pytest.raises(KeyError, match='LoadAffinityScores'):
        PackAffinityInputs()(dict(img=np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(ValueError, match='stride'):
        PackAffinityInputs(stride=0)


def test_packed_batch_trains_affinity_net(image_and_cam):
    info, cam_dir, _ = image_and_cam
    pipeline = Compose([
        dict(type='LoadCheckedImageFromFile'),
        LoadAffinityScores(cam_dir),
        dict(type='RandomFlip', prob=0.5),
        PackAffinityInputs(),
    ])
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='AffinityNet',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0],
                               std=[255, 255, 255], size=(64, 112)),
        backbone=dict(type='ResNet38', widen_factor=0.0625),
        embed_head=dict(type='AffinityEmbedHead')))
    batch = pseudo_collate([pipeline(dict(info)) for _ in range(2)])
    data = model.data_preprocessor(batch, training=True)
    assert data['inputs'].shape == (2, 3, 64, 112)
    losses = model(**data, mode='loss')  # labels (8, 12) padded to (8, 14)
    assert losses['num_pairs_bg'] > 0 and losses['num_pairs_fg'] > 0
    assert all(torch.isfinite(v) for v in losses.values())
