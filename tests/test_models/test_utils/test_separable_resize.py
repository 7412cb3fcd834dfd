"""bilinear_resize: F.interpolate's bilinear map as two matrix products."""
import pytest
import torch
import torch.nn.functional as F

from mmcyc.models.utils import bilinear_resize, linear_interpolation_matrix


def test_interpolation_matrix_by_hand():
    # 2 -> 4, align_corners=False: source x = (o + 0.5) / 2 - 0.5, i.e.
    # -0.25 (clamped to 0), 0.25, 0.75, 1.25 (neighbours clamped to 1)
    expected = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75],
                             [0.0, 1.0]])
    assert torch.allclose(linear_interpolation_matrix(2, 4), expected)
    # align_corners=True: x = o * (2 - 1) / (4 - 1)
    expected = torch.tensor([[1.0, 0.0], [2 / 3, 1 / 3], [1 / 3, 2 / 3],
                             [0.0, 1.0]])
    assert torch.allclose(
        linear_interpolation_matrix(2, 4, align_corners=True), expected)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('in_size,out_size', [((12, 12), (96, 96)),
                                              ((5, 7), (13, 4)),
                                              ((9, 3), (9, 3))])
def test_equals_f_interpolate_with_its_gradient(in_size, out_size,
                                                align_corners):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *in_size, dtype=torch.float64)
    upstream = torch.randn(2, 3, *out_size, dtype=torch.float64)
    x_ref = x.clone().requires_grad_()
    ref = F.interpolate(x_ref, size=out_size, mode='bilinear',
                        align_corners=align_corners)
    (ref * upstream).sum().backward()
    x_ours = x.clone().float().requires_grad_()
    ours = bilinear_resize(x_ours, out_size, align_corners)
    (ours * upstream.float()).sum().backward()
    assert ours.shape == (2, 3) + tuple(out_size)
    assert ours.dtype == torch.float32
    assert torch.allclose(ours.double(), ref, atol=1e-5)
    assert torch.allclose(x_ours.grad.double(), x_ref.grad, atol=1e-4)


def test_half_input_is_resized_in_float32():
    x = torch.randn(1, 2, 4, 4)
    out = bilinear_resize(x.half(), (8, 8))
    assert out.dtype == torch.float32
    ref = F.interpolate(x.half().float(), size=(8, 8), mode='bilinear',
                        align_corners=False)
    assert torch.allclose(out, ref, atol=1e-5)


def test_rejects_other_ranks():
    with pytest.raises(ValueError, match=r'\(N, C, h, w\)'):
        bilinear_resize(torch.zeros(3, 4, 4), (8, 8))
