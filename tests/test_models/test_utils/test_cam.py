import pytest
import torch
import torch.nn.functional as F

from mmcyc.models.utils import (cam_to_mask, class_activation_map,
                                mask_cam_by_label, multi_scale_cam,
                                normalize_cam)


def brute_force_cam(features, weight):
    """Eq. 1 + ReLU + Eq. 2 position by position, as written in the paper."""
    n, d, h, w = features.shape
    c = weight.shape[0]
    cam = torch.zeros(n, c, h, w, dtype=torch.float64)
    for b in range(n):
        for k in range(c):
            for y in range(h):
                for x in range(w):
                    value = sum(float(weight[k, ch]) * float(features[b, ch, y, x])
                                for ch in range(d))
                    cam[b, k, y, x] = max(value, 0.0)
    norm = cam.clone()
    for b in range(n):
        for k in range(c):
            norm[b, k] = cam[b, k] / (cam[b, k].max() + 1e-5)
    return cam, norm


def test_eq1_eq2_against_brute_force():
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(2, 5, 3, 4, generator=gen)
    weight = torch.randn(3, 5, 1, 1, generator=gen)
    expected_cam, expected_norm = brute_force_cam(features, weight[:, :, 0, 0])
    cam = class_activation_map(features, weight)
    assert cam.shape == (2, 3, 3, 4)
    assert torch.allclose(cam.double(), expected_cam, atol=1e-5)
    assert torch.allclose(normalize_cam(cam).double(), expected_norm, atol=1e-5)


def test_normalize_keeps_zero_maps_zero_and_max_below_one():
    cam = torch.zeros(1, 2, 4, 4)
    cam[0, 0, 1, 2] = 7.0
    norm = normalize_cam(cam)
    assert norm[0, 1].abs().sum() == 0
    assert 0.999 < norm[0, 0].max() < 1.0
    assert norm.dtype == torch.float32


def test_mask_by_label_and_cam_to_mask_hand_case():
    cam = torch.tensor([[[[0.9, 0.1]], [[0.5, 0.3]], [[0.7, 0.8]]]])  # (1,3,1,2)
    masked = mask_cam_by_label(cam, torch.tensor([[0.0, 1.0, 1.0]]))
    assert masked[0, 0].abs().sum() == 0
    # position 0: class 2 (0.7) beats 0.5 and bg 0.2 -> label 3
    # position 1: class 2 (0.8) -> label 3
    assert cam_to_mask(masked, 0.2).tolist() == [[[3, 3]]]
    # with bg 0.75: position 0 -> background, position 1 -> 3
    assert cam_to_mask(masked, 0.75).tolist() == [[[0, 3]]]


def test_multi_scale_flip_against_explicit_loop():
    gen = torch.Generator().manual_seed(2)
    conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
    cam_fn = lambda x: F.relu(conv(x))  # noqa: E731
    inputs = torch.randn(2, 3, 10, 12, generator=gen)
    scales = (1.0, 0.5, 1.5)
    with torch.no_grad():
        got = multi_scale_cam(cam_fn, inputs, scales=scales, flip=True)
        expected = torch.zeros(2, 4, 10, 12)
        for i in range(2):
            for s in scales:
                img = inputs[i:i + 1]
                size = (round(10 * s), round(12 * s))
                if size != (10, 12):
                    img = F.interpolate(img, size=size, mode='bilinear',
                                        align_corners=False)
                for flip in (False, True):
                    x = img.flip(-1) if flip else img
                    cam = cam_fn(x)
                    cam = cam.flip(-1) if flip else cam
                    expected[i] += F.interpolate(
                        cam, size=(10, 12), mode='bilinear',
                        align_corners=False)[0]
    assert got.shape == (2, 4, 10, 12)
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match='scales'):
        multi_scale_cam(cam_fn, inputs, scales=())
