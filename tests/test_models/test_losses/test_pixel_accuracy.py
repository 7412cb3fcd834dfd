"""pixel_accuracy against a hand count and against mmseg's accuracy()."""
import pytest
import torch
from mmseg.models.losses import accuracy

from mmcyc.models.losses import pixel_accuracy


def test_hand_counted_case():
    # 1 image, 3 classes, 2x2 pixels; predicted ids [[0, 2], [1, 1]]
    logits = torch.tensor([[[[5., 0.], [0., 1.]],
                            [[1., 1.], [3., 4.]],
                            [[0., 9.], [1., 2.]]]])
    # right, right, wrong, ignored: 2 of 3 counted pixels
    label = torch.tensor([[[0, 2], [2, 255]]])
    acc = pixel_accuracy(logits, label, ignore_index=255)
    assert acc.shape == (1, )
    assert acc.item() == pytest.approx(200 / 3, abs=1e-4)
    # nothing counted: mmseg's eps terms give 100 * eps / eps
    all_ignored = torch.full_like(label, 255)
    assert pixel_accuracy(logits, all_ignored).item() == pytest.approx(100)


def test_equals_mmseg_accuracy():
    torch.manual_seed(0)
    logits = torch.randn(4, 21, 24, 24, requires_grad=True)
    label = torch.randint(0, 21, (4, 24, 24))
    label[:, :5] = 255
    expected = accuracy(logits, label, ignore_index=255)
    got = pixel_accuracy(logits, label, ignore_index=255)
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)
    assert not got.requires_grad  # logged only


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match=r'\(2, 21, 8, 8\) and \(2, 9, 8\)'):
        pixel_accuracy(torch.zeros(2, 21, 8, 8), torch.zeros(2, 9, 8))
