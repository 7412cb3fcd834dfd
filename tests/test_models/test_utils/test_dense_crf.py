"""DenseCRF (psa's crf_inference) and its use in LoadAffinityScores."""
import numpy as np
import pytest
import torch
from mmseg.registry import TASK_UTILS
from PIL import Image

import mmcyc  # noqa: F401
from mmcyc.datasets.transforms.load_affinity_scores import \
    LoadAffinityScores
from mmcyc.models.utils import DenseCRF
from mmcyc.utils.cam_io import save_cam


def test_registered_with_psa_defaults():
    crf = TASK_UTILS.build(dict(type='DenseCRF'))
    assert isinstance(crf, DenseCRF)
    assert (crf.num_iters, crf.gaussian_sxy, crf.gaussian_compat,
            crf.bilateral_sxy, crf.bilateral_srgb,
            crf.bilateral_compat) == (10, 3, 3, 80, 13, 10)


def test_without_pairwise_terms_it_normalises_the_scores():
    """With both kernel weights 0 the mean field is softmax(-unary), i.e.
    the scores divided by their sum (after psa's clip at 1e-5)."""
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.01, 1.0, (3, 5, 7)).astype(np.float32)
    scores[1, 0, 0] = 0.0  # clipped to 1e-5
    image = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    out = DenseCRF(gaussian_compat=0, bilateral_compat=0)(image, scores)
    clipped = np.maximum(scores, 1e-5)
    expected = clipped / clipped.sum(0, keepdims=True)
    assert out.shape == (3, 5, 7) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_smooths_within_a_colour_region_and_stops_at_its_edge():
    """Left half black, right half white. Class 1 is confident in most of
    the white half; a strip of the white half next to the edge and a lone
    pixel in the black half lean weakly the wrong way. The CRF gives the
    strip to class 1 (same colour as class 1's region), the pixel to class
    0, and keeps the black half class 0."""
    height, width = 24, 40
    image = np.zeros((height, width, 3), np.uint8)
    image[:, 20:] = 255
    scores = np.full((2, height, width), 0.5, np.float32)
    scores[0, :, :20], scores[1, :, :20] = 0.9, 0.1
    scores[0, :, 24:], scores[1, :, 24:] = 0.05, 0.95
    scores[0, :, 20:24], scores[1, :, 20:24] = 0.55, 0.45  # wrong strip
    scores[:, 12, 8] = (0.4, 0.6)  # wrong pixel
    before = scores.argmax(0)
    assert (before[:, 20:24] == 0).all() and before[12, 8] == 1
    after = DenseCRF()(torch.from_numpy(image), torch.from_numpy(scores))
    labels = after.argmax(0).numpy()
    assert (labels[:, :20] == 0).all()
    assert (labels[:, 20:] == 1).all()
    np.testing.assert_allclose(after.sum(0).numpy(), 1.0, atol=1e-5)


def test_bad_inputs():
    crf = DenseCRF()
    with pytest.raises(ValueError, match='uint8'):
        crf(np.zeros((4, 4, 3), np.float32), np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match='image size'):
        crf(np.zeros((4, 4, 3), np.uint8), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match='num_iters'):
        DenseCRF(num_iters=-1)


def test_load_affinity_scores_runs_the_crf_once_per_image(tmp_path):
    """A config-dict CRF refines both stacks; with a cache the second load
    reads them back (fp16) instead of running the CRF again."""
    rng = np.random.default_rng(1)
    img_path = tmp_path / 'img1.png'
    img = rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)
    Image.fromarray(img).save(img_path)
    cams = np.zeros((1, 16, 24), np.float32)
    cams[0, 3:12, 4:18] = 0.8
    save_cam(str(tmp_path / 'cams' / 'img1.npz'), cams, np.array([6]))
    calls = []

    def counting_crf(image, scores):
        calls.append(1)
        return DenseCRF()(image, scores)

    cache = tmp_path / 'crf'
    transform = LoadAffinityScores(
        str(tmp_path / 'cams'), crf=counting_crf, crf_cache_dir=str(cache))
    results = dict(img_path=str(img_path), img=img[..., ::-1].copy())
    first = transform(dict(results))['aff_scores']
    assert len(calls) == 2 and (cache / 'img1.npz').is_file()
    second = transform(dict(results))['aff_scores']
    assert len(calls) == 2  # read back
    np.testing.assert_allclose(second, first, atol=1e-3)
    # the CRF'd stacks: each (K + 1) group sums to one at every pixel
    assert first.shape == (16, 24, 4)
    np.testing.assert_allclose(first[..., :2].sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(first[..., 2:].sum(-1), 1, atol=1e-5)
    # the same through a config dict
    by_config = LoadAffinityScores(
        str(tmp_path / 'cams'), crf=dict(type='DenseCRF'))
    np.testing.assert_allclose(
        by_config(dict(results))['aff_scores'], first, atol=1e-6)
