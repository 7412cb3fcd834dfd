# Copyright (c) mmcyc contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmcyc.models.backbones import ResNet38

TINY = 0.125  # every width / 8: 8, 16, 32, 64, 128, 256, 512 channels


def expected_num_params(with_b7=True):
    """Parameter count of the reference ResNet-38, by hand from its layers.

    Returns (parameters, BatchNorm running-stat elements, number of BNs).
    """

    def conv(cin, cout, k):
        return cin * cout * k * k

    # Basic pre-activation blocks: (in, mid, out, has 1x1 shortcut).
    basic = ([(64, 128, 128, True)] + [(128, 128, 128, False)] * 2 +
             [(128, 256, 256, True)] + [(256, 256, 256, False)] * 2 +
             [(256, 512, 512, True)] + [(512, 512, 512, False)] * 5 +
             [(512, 512, 1024, True)] + [(1024, 512, 1024, False)] * 2)
    bottleneck = [(1024, 2048)] + ([(2048, 4096)] if with_b7 else [])
    params, bn_channels = conv(3, 64, 3), []
    for cin, mid, cout, shortcut in basic:
        params += conv(cin, mid, 3) + conv(mid, cout, 3)
        params += conv(cin, cout, 1) if shortcut else 0
        bn_channels += [cin, mid]
    for cin, cout in bottleneck:
        params += conv(cin, cout // 4, 1) + conv(cout // 4, cout // 2, 3)
        params += conv(cout // 2, cout, 1) + conv(cin, cout, 1)
        bn_channels += [cin, cout // 4, cout // 2]
    if with_b7:
        bn_channels.append(4096)
    params += 2 * sum(bn_channels)  # BN weight + bias
    return params, 2 * sum(bn_channels), len(bn_channels)


@pytest.fixture(scope='module')
def full_model():
    """The full-width model with b7, built once on CPU (~105 M params)."""
    torch.manual_seed(0)
    return ResNet38().eval()


def test_full_width_parameter_count(full_model):
    params, stats, num_bn = expected_num_params()
    assert params == 105_070_912  # about 105 M, as METHOD.md says
    assert sum(p.numel() for p in full_model.parameters()) == params
    assert sum(b.numel() for b in full_model.buffers()) == stats + num_bn


def test_full_width_without_b7_on_meta():
    with torch.device('meta'):
        model = ResNet38(with_b7=False, out_indices=(0, 1, 2))
    params, stats, num_bn = expected_num_params(with_b7=False)
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(b.numel() for b in model.buffers()) == stats + num_bn
    assert not hasattr(model, 'b7') and not hasattr(model, 'bn7')
    assert not any(k.startswith(('b7.', 'bn7.')) for k in model.state_dict())


def test_full_width_forward_shapes(full_model):
    with torch.no_grad():
        outs = full_model(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 512, 8, 8),
                                             (1, 1024, 8, 8),
                                             (1, 4096, 8, 8)]
    assert full_model.out_channels == (512, 1024, 4096)
    assert (outs[2] >= 0).all()  # relu(bn7(.))


def test_reference_layer_shapes(full_model):
    shapes = {k: tuple(v.shape) for k, v in full_model.state_dict().items()}
    assert shapes['conv1a.weight'] == (64, 3, 3, 3)
    assert shapes['b2.conv_branch1.weight'] == (128, 64, 1, 1)
    assert 'b2_1.conv_branch1.weight' not in shapes  # identity shortcut
    assert shapes['b5.conv_branch2a.weight'] == (512, 512, 3, 3)
    assert shapes['b5.conv_branch2b1.weight'] == (1024, 512, 3, 3)
    assert shapes['b6.conv_branch2b1.weight'] == (1024, 512, 3, 3)
    assert shapes['b7.conv_branch2b2.weight'] == (4096, 2048, 1, 1)
    assert shapes['bn7.running_var'] == (4096, )
    assert full_model.b5.conv_branch2a.dilation == (1, 1)
    assert full_model.b5_1.conv_branch2a.dilation == (2, 2)
    assert full_model.b7.conv_branch2b1.dilation == (4, 4)
    assert full_model.b6.dropout_2b1.p == 0.3
    assert full_model.b7.dropout_2b2.p == 0.5
    assert not any(m.bias is not None for m in full_model.modules()
                   if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize('size, feat', [((448, 448), 56), ((65, 65), 9)])
def test_tiny_stride_8_and_tap_channels(size, feat):
    model = ResNet38(out_indices=(3, 2, 1, 0), widen_factor=TINY).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, *size))
    assert model.out_channels == (512, 256, 128, 64)
    assert [tuple(o.shape) for o in outs] == [(1, c, feat, feat)
                                             for c in (512, 256, 128, 64)]


def test_taps_match_manual_forward():
    model = ResNet38(out_indices=(0, 1, 2, 3), widen_factor=TINY).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        conv4, conv5, f6, conv6 = model(x)
        y = model.conv1a(x)
        for name in ('b2', 'b2_1', 'b2_2', 'b3', 'b3_1', 'b3_2', 'b4',
                     'b4_1', 'b4_2', 'b4_3', 'b4_4', 'b4_5'):
            y = getattr(model, name)(y)[0]
        torch.testing.assert_close(conv4, torch.relu(model.b5.bn_branch2a(y)))
        y = model.b5_2(model.b5_1(model.b5(y)[0])[0])[0]
        torch.testing.assert_close(conv5, torch.relu(model.b6.bn_branch2a(y)))
        y = model.b6(y)[0]
        torch.testing.assert_close(f6, y)
        torch.testing.assert_close(
            conv6, torch.relu(model.bn7(model.b7(y)[0])))


def test_widen_factor_scales_channels():
    model = ResNet38(widen_factor=0.25, out_indices=(0, 1, 3))
    assert model.out_channels == (128, 256, 1024)
    assert model.conv1a.out_channels == 16
    assert model.b7.conv_branch2b1.out_channels == 512


def test_without_b7_is_cyc_network_f():
    model = ResNet38(
        widen_factor=TINY, with_b7=False, out_indices=(2, )).eval()
    with torch.no_grad():
        (feat, ) = model(torch.rand(1, 3, 64, 64))
    assert feat.shape == (1, 256, 8, 8)  # 2048 at full width
    assert model.out_channels == (256, )


def test_registry_build():
    model = MODELS.build(
        dict(type='ResNet38', widen_factor=TINY, out_indices=[3]))
    assert isinstance(model, ResNet38)
    assert model.out_indices == (3, )


def trainable(model, prefix):
    return [
        p.requires_grad for n, p in model.named_parameters()
        if n.startswith(prefix)
    ]


def test_frozen_stages_and_norm_eval_survive_train():
    model = ResNet38(widen_factor=TINY, frozen_stages=1, norm_eval=True)
    model.requires_grad_(True)  # train() must freeze again
    model.train()
    for prefix in ('conv1a.', 'b2.', 'b2_1.', 'b2_2.'):
        assert not any(trainable(model, prefix)), prefix
    assert all(trainable(model, 'b3.conv_'))
    assert all(trainable(model, 'b7.conv_'))
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert not any(p.requires_grad for m in bns for p in m.parameters())
    assert model.training and model.b7.dropout_2b1.training
    # Running statistics do not move in a training forward pass.
    before = model.b4.bn_branch2a.running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    torch.testing.assert_close(model.b4.bn_branch2a.running_mean, before)


def test_no_freezing():
    model = ResNet38(widen_factor=TINY, frozen_stages=-1, norm_eval=False)
    model.train()
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())


def test_frozen_stage_zero_freezes_only_conv1a():
    model = ResNet38(widen_factor=TINY, frozen_stages=0, norm_eval=False)
    model.train()
    assert not any(trainable(model, 'conv1a.'))
    assert all(trainable(model, 'b2.'))


@pytest.mark.parametrize('kwargs, match', [
    (dict(out_indices=(0, 4)), 'out_indices'),
    (dict(out_indices=(0, 0)), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(with_b7=False), r'out_indices.*\(0, 1, 3\)'),
    (dict(widen_factor=0), 'widen_factor'),
    (dict(widen_factor=-1.0), 'widen_factor'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(frozen_stages=6, with_b7=False, out_indices=(0, )),
     'frozen_stages'),
    (dict(dropout_b6=1.0), 'dropout_b6'),
    (dict(dropout_b7=-0.1), 'dropout_b7'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet38(**kwargs)
