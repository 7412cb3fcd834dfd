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


# --------------------------------------------------------------------- #
# the feature grid: psa's alignment (image padded at the bottom / right to a
# multiple of the stride, cell (i, j) covers [s i, s i + s) x [s j, s j + s))
def test_cam_to_grid_is_psa_average_pooling_by_hand():
    from mmcyc.models.utils.cam import cam_to_grid, pool_scores
    cam = torch.arange(30.).reshape(1, 5, 6)  # (1, H=5, W=6), value 6y + x
    pooled = cam_to_grid(cam, (3, 3))  # stride 2, one zero row of padding
    assert pooled.shape == (1, 3, 3) and pooled.dtype == torch.float32
    expected = torch.tensor([[
        [(0 + 1 + 6 + 7) / 4, (2 + 3 + 8 + 9) / 4, (4 + 5 + 10 + 11) / 4],
        [(12 + 13 + 18 + 19) / 4, (14 + 15 + 20 + 21) / 4,
         (16 + 17 + 22 + 23) / 4],
        # last row: only y = 4 exists, divided by 4 nonetheless
        [(24 + 25) / 4, (26 + 27) / 4, (28 + 29) / 4],
    ]])
    assert torch.equal(pooled, expected)
    assert torch.equal(pool_scores(cam, 2), expected)
    # the same rule with the stride given, and on a batch (N, C, H, W)
    assert torch.equal(cam_to_grid(cam[None], (3, 3), stride=2)[0], expected)
    # already on the grid: returned as it is
    assert cam_to_grid(cam, (5, 6)) is cam


def test_grid_stride_inference_and_errors():
    from mmcyc.models.utils.cam import cam_to_grid, grid_stride
    assert grid_stride((448, 448), (56, 56)) == 8
    assert grid_stride((500, 375), (63, 47)) == 8  # ResNet-38: ceil(H / 8)
    assert grid_stride((7, 9), (7, 9)) == 1
    # a grid under 8 cells a side may fit several strides: the smallest one
    # consistent with both axes is inferred, a given one is checked
    assert grid_stride((20, 27), (3, 4)) == 7
    assert grid_stride((20, 27), (3, 4), stride=8) == 8
    with pytest.raises(ValueError, match=r'20x27 map .* 3x4 .* stride 10'):
        grid_stride((20, 27), (3, 4), stride=10)
    with pytest.raises(ValueError, match=r'a 17x16 map does not lie on a '
                       r'2x4 feature grid with stride 9'):
        grid_stride((17, 16), (2, 4))  # rows need s >= 9, columns s <= 5
    with pytest.raises(ValueError, match=r'4x4 map .* 8x8'):
        cam_to_grid(torch.rand(2, 4, 4), (8, 8))  # coarser than the grid


def test_grid_to_pixels_replicates_cells_with_psa_alignment():
    from mmcyc.models.utils.cam import grid_to_pixels
    grid = torch.arange(12.).reshape(1, 3, 4)  # (1, h, w)
    up = grid_to_pixels(grid, (20, 27), stride=8)
    assert up.shape == (1, 20, 27)
    for y in range(20):
        for x in range(27):
            assert up[0, y, x] == grid[0, y // 8, x // 8]
    # inferred stride 7 for these sizes
    up7 = grid_to_pixels(grid, (20, 27))
    assert up7[0, 6, 6] == 0 and up7[0, 7, 7] == 5 and up7[0, 19, 26] == 11
    assert grid_to_pixels(grid, (3, 4)) is grid
    # pooling the replicated map gives the grid back (cells fully inside)
    from mmcyc.models.utils.cam import cam_to_grid
    assert torch.equal(cam_to_grid(grid_to_pixels(grid, (24, 32)), (3, 4)),
                       grid)
