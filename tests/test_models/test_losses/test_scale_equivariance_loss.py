import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmcyc.models.losses import (ScaleEquivarianceLoss, max_normalize_cam,
                                 scale_equivariance_loss)

init_default_scope('mmseg')


def reference_loss(cam_s, cam, label, eps=1e-5):
    """SSENet-pytorch train_cls_ser.py's loss_r, written out per image and
    class: relu, max over positions + eps, relu(. - eps) / max, times the
    label; the full map downsampled to the rescaled map's size; the mean of
    the squared difference over every element."""
    cam_r = F.interpolate(cam, size=cam_s.shape[2:], mode='bilinear',
                          align_corners=False)
    total, count = 0.0, 0
    for n in range(cam.shape[0]):
        for c in range(cam.shape[1]):
            maps = []
            for m in (cam_s[n, c], cam_r[n, c]):
                pos = torch.clamp(m, min=0)
                peak = pos.max() + eps
                maps.append(torch.clamp(pos - eps, min=0) / peak * label[n, c])
            total = total + ((maps[0] - maps[1]) ** 2).sum()
            count += maps[0].numel()
    return total / count


def tiny_maps(seed=0):
    gen = torch.Generator().manual_seed(seed)
    cam = torch.randn(2, 3, 20, 30, generator=gen)
    cam_s = torch.randn(2, 3, 6, 9, generator=gen)
    labels = torch.tensor([[1., 0., 1.], [0., 1., 0.]])
    return cam_s, cam, labels


def test_matches_the_reference_expression():
    cam_s, cam, labels = tiny_maps()
    expected = reference_loss(cam_s, cam, labels)
    assert torch.allclose(scale_equivariance_loss(cam_s, cam, labels),
                          expected, atol=1e-7)


def test_downsampling_is_the_old_scale_factor_resize():
    # floor(20 * 0.3) x floor(30 * 0.3) = 6 x 9: the size the reference's
    # scale_factor=0.3 gives; the PyTorch of its time mapped coordinates by
    # the size ratio, which is what resizing to the size does now
    cam = torch.randn(1, 2, 20, 30)
    old = F.interpolate(cam, scale_factor=0.3, mode='bilinear',
                        align_corners=False, recompute_scale_factor=True)
    assert old.shape[2:] == (6, 9)
    assert torch.allclose(
        old, F.interpolate(cam, size=(6, 9), mode='bilinear',
                           align_corners=False))


def test_normalisation_and_absent_classes():
    cam = torch.tensor([[[[-1., 0., 2.], [4., 1., 3.]]]]).repeat(1, 2, 1, 1)
    labels = torch.tensor([[1., 0.]])
    normed = max_normalize_cam(cam, labels)
    peak = 4 + 1e-5
    expected = torch.tensor([[0., 0., 2 - 1e-5], [4 - 1e-5, 1 - 1e-5,
                                                   3 - 1e-5]]) / peak
    assert torch.allclose(normed[0, 0], expected)
    assert normed[0, 1].abs().sum() == 0
    # absent classes contribute zeros to the mean, whatever their maps
    cam_s, cam_full, _ = tiny_maps()
    none = torch.zeros(2, 3)
    assert scale_equivariance_loss(cam_s, cam_full, none) == 0
    only0 = torch.tensor([[1., 0., 0.], [0., 0., 0.]])
    changed = cam_s.clone()
    changed[:, 1:] = 100 * torch.randn_like(changed[:, 1:])
    changed[1] = -changed[1]
    assert torch.allclose(scale_equivariance_loss(cam_s, cam_full, only0),
                          scale_equivariance_loss(changed, cam_full, only0))


def test_gradient_reaches_both_passes():
    cam_s, cam, labels = tiny_maps(1)
    cam_s.requires_grad_(True)
    cam.requires_grad_(True)
    scale_equivariance_loss(cam_s, cam, labels).backward()
    for grad in (cam_s.grad, cam.grad):
        assert grad is not None and grad.abs().sum() > 0
        # no gradient to the maps of absent classes
        assert grad[0, 1].abs().sum() == 0 and grad[1, 0].abs().sum() == 0
    # the maximum is not detached: scaling a present class's map changes
    # nothing after the normalisation (up to eps), so its gradient along
    # the map itself vanishes
    along = (cam_s.grad[0, 0] * cam_s.detach()[0, 0]).sum()
    assert abs(along) < 1e-4 * cam_s.grad[0, 0].abs().sum()


def test_module_through_registry():
    cam_s, cam, labels = tiny_maps(2)
    loss = MODELS.build(dict(type='ScaleEquivarianceLoss', loss_weight=0.5,
                             loss_name='loss_eq'))
    assert isinstance(loss, ScaleEquivarianceLoss)
    assert loss.loss_name == 'loss_eq'
    assert list(loss.parameters()) == [] and list(loss.buffers()) == []
    assert torch.allclose(loss(cam_s, cam, labels),
                          0.5 * reference_loss(cam_s, cam, labels))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='loss_'):
        ScaleEquivarianceLoss(loss_name='eq')
    with pytest.raises(ValueError, match='loss_weight'):
        ScaleEquivarianceLoss(loss_weight=-1)
    with pytest.raises(ValueError, match='eps'):
        ScaleEquivarianceLoss(eps=0)
    cam_s, cam, labels = tiny_maps()
    with pytest.raises(ValueError, match='cam_scaled'):
        scale_equivariance_loss(cam_s[:, :2], cam, labels)
    with pytest.raises(ValueError, match='labels'):
        scale_equivariance_loss(cam_s, cam, labels[:, :2])
