# Copyright (c) mmcyc contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmcyc.models.backbones import VGG16d

TINY = 0.125  # every width / 8: 8, 16, 32, 64 channels, fc6 / fc7 128

# psa network/vgg16d.py, written out layer by layer:
# (name, in, out, kernel) of every conv, fc6 and fc7 as convs.
PSA_LAYERS = [
    ('conv1_1', 3, 64, 3), ('conv1_2', 64, 64, 3),
    ('conv2_1', 64, 128, 3), ('conv2_2', 128, 128, 3),
    ('conv3_1', 128, 256, 3), ('conv3_2', 256, 256, 3),
    ('conv3_3', 256, 256, 3),
    ('conv4_1', 256, 512, 3), ('conv4_2', 512, 512, 3),
    ('conv4_3', 512, 512, 3),
    ('conv5_1', 512, 512, 3), ('conv5_2', 512, 512, 3),
    ('conv5_3', 512, 512, 3),
    ('fc6', 512, 1024, 3), ('fc7', 1024, 1024, 1),
]


def psa_num_params(width=1.0):
    """Weights + biases of psa's vgg16d.Net, from the layer list."""
    total = 0
    for _, cin, cout, k in PSA_LAYERS:
        cin = cin if cin == 3 else round(cin * width)
        cout = round(cout * width)
        total += cin * cout * k * k + cout
    return total


def psa_state_dict_shapes():
    """psa's keys and shapes (conv1_1.weight ... fc7.bias)."""
    shapes = {}
    for name, cin, cout, k in PSA_LAYERS:
        shapes[f'{name}.weight'] = (cout, cin, k, k)
        shapes[f'{name}.bias'] = (cout, )
    return shapes


def test_full_width_parameter_count_on_meta():
    with torch.device('meta'):
        model = VGG16d()
    assert psa_num_params() == 20_483_904  # the "20M" caffe model
    assert sum(p.numel() for p in model.parameters()) == psa_num_params()
    assert not list(model.buffers())  # no BatchNorm
    assert {k: tuple(v.shape)
            for k, v in model.state_dict().items()} == psa_state_dict_shapes()


def test_psa_state_dict_loads_1to1():
    torch.manual_seed(0)
    model = VGG16d(widen_factor=TINY)
    psa = {
        k: torch.randn(v.shape)
        for k, v in model.state_dict().items()
    }
    assert set(psa) == {k for k in psa_state_dict_shapes()}
    model.load_state_dict(psa, strict=True)
    assert torch.equal(model.fc7.bias, psa['fc7.bias'])


@pytest.mark.parametrize('size', [(63, 65), (64, 64), (57, 41), (9, 8)])
def test_stride8_on_any_size(size):
    model = VGG16d(widen_factor=TINY).eval()
    with torch.no_grad():
        outs = model(torch.rand(2, 3, *size))
    grid = (math.ceil(size[0] / 8), math.ceil(size[1] / 8))
    assert [tuple(o.shape) for o in outs] == [(2, 64, *grid), (2, 64, *grid),
                                             (2, 128, *grid)]
    assert model.out_channels == (64, 64, 128)
    assert all((o >= 0).all() for o in outs)  # every tap is after a ReLU


def test_taps_equal_a_hand_written_forward():
    """psa's forward_as_dict, written out with the module's own layers."""
    torch.manual_seed(0)
    model = VGG16d(widen_factor=TINY, fc6_dilation=4).eval()
    x = torch.randn(1, 3, 40, 48)
    relu, pool = torch.relu, nn.functional.max_pool2d
    with torch.no_grad():
        h = x
        for name in ('conv1_1', 'conv1_2'):
            h = relu(getattr(model, name)(h))
        h = pool(h, 3, 2, 1)
        for name in ('conv2_1', 'conv2_2'):
            h = relu(getattr(model, name)(h))
        h = pool(h, 3, 2, 1)
        for name in ('conv3_1', 'conv3_2', 'conv3_3'):
            h = relu(getattr(model, name)(h))
        h = pool(h, 3, 2, 1)
        for name in ('conv4_1', 'conv4_2', 'conv4_3'):
            h = relu(getattr(model, name)(h))
        conv4 = h
        h = pool(h, 3, 1, 1)
        for name in ('conv5_1', 'conv5_2', 'conv5_3'):
            h = relu(getattr(model, name)(h))
        conv5 = h
        fc7 = relu(model.fc7(relu(model.fc6(h))))
        outs = model(x)
    for out, ref in zip(outs, (conv4, conv5, fc7)):
        assert torch.allclose(out, ref, atol=1e-6)
    assert model.conv5_1.dilation == (2, 2) and model.conv5_1.padding == (2,
                                                                           2)
    assert model.fc6.dilation == (4, 4) and model.fc6.padding == (4, 4)


def test_out_indices_order_and_single_tap():
    model = VGG16d(widen_factor=TINY, out_indices=(2, 0)).eval()
    outs = model(torch.rand(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [128, 64]
    assert model.out_channels == (128, 64)
    model = VGG16d(widen_factor=TINY, out_indices=0).eval()
    assert model.out_channels == (64, )
    assert len(model(torch.rand(1, 3, 32, 32))) == 1


def receptive_field_width(fc6_dilation):
    """Width of the input columns that reach fc7's cell 20 of 40.

    All weights positive, biases zero, a zero image with one bright column
    per batch item: every ReLU passes and every max pool lets the bright
    value through, so a cell is non-zero exactly when the column lies in
    its receptive field.
    """
    model = VGG16d(widen_factor=1 / 64, out_indices=2,
                   fc6_dilation=fc6_dilation).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.fill_(1.0 / module.weight[0].numel())
                module.bias.zero_()
        x = torch.zeros(320, 3, 8, 320)
        x[torch.arange(320), :, 3, torch.arange(320)] = 1.0
        (out, ) = model(x)
    assert out.shape == (320, 16, 1, 40)  # the shape does not depend on it
    hit = (out[:, :, 0, 20].sum(dim=1) > 0).nonzero()[:, 0]
    assert len(hit) == hit.max() - hit.min() + 1  # one contiguous field
    return len(hit)


def test_fc6_dilation_changes_receptive_field_not_shape():
    """The receptive field by the usual recursion r += (k_eff - 1) * jump:
    conv1 3x3 x2: 5; pool1 (3, /2): 7, jump 2; conv2 x2: 15; pool2: 19,
    jump 4; conv3 x3: 43; pool3: 51, jump 8; conv4 x3: 99; pool4 (3, /1):
    115; conv5 x3 (dilation 2, k_eff 5): 211; fc6 (k_eff 2 d + 1): 211 +
    16 d, i.e. 227 for d = 1 and 275 for d = 4."""
    assert receptive_field_width(1) == 227
    assert receptive_field_width(4) == 275


@pytest.mark.parametrize('width, channels', [(0.25, (128, 128, 256)),
                                             (1 / 64, (8, 8, 16))])
def test_widen_factor_scales_every_width(width, channels):
    with torch.device('meta'):
        model = VGG16d(widen_factor=width)
    assert model.out_channels == channels
    assert model.conv1_1.in_channels == 3
    assert sum(p.numel() for p in model.parameters()) == psa_num_params(width)


def test_frozen_stages_stay_frozen_in_train_mode():
    model = VGG16d(widen_factor=TINY, frozen_stages=1)
    model.train()
    frozen = {'conv1_1', 'conv1_2', 'conv2_1', 'conv2_2'}
    for name, param in model.named_parameters():
        assert param.requires_grad == (name.split('.')[0] not in frozen), name


def test_norm_cfg_adds_a_norm_before_each_relu():
    model = VGG16d(widen_factor=TINY, norm_cfg=dict(type='BN'),
                   frozen_stages=0, norm_eval=False)
    keys = model.state_dict()
    assert 'conv1_1.bias' not in keys  # the norm's bias replaces it
    assert {'bn1_1.weight', 'bn5_3.running_var', 'bn6.bias',
            'bn7.weight'} <= set(keys)
    model.train()
    assert not model.bn1_2.training and model.bn2_1.training
    assert not model.bn1_1.weight.requires_grad
    outs = model(torch.rand(2, 3, 24, 24))
    assert outs[2].shape == (2, 128, 3, 3)
    model = VGG16d(widen_factor=TINY, norm_cfg=dict(type='BN'),
                   norm_eval=True).train()
    assert not any(m.training for m in model.modules()
                   if isinstance(m, nn.BatchNorm2d))


def test_dropout_between_fc6_and_fc7():
    model = VGG16d(widen_factor=TINY, out_indices=2, dropout_fc6=0.5)
    assert model.drop6.p == 0.5
    x = torch.rand(1, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])


def test_build_from_registry():
    model = MODELS.build(dict(type='VGG16d', widen_factor=TINY,
                              out_indices=(2, )))
    assert isinstance(model, VGG16d)
    assert model.out_channels == (128, )


@pytest.mark.parametrize('kwargs, match', [
    (dict(out_indices=(3, )), 'out_indices'),
    (dict(out_indices=(0, 0)), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(fc6_dilation=0), 'fc6_dilation'),
    (dict(fc6_dilation=1.5), 'fc6_dilation'),
    (dict(dropout_fc6=1.0), 'dropout_fc6'),
    (dict(widen_factor=0.001), 'widen_factor'),
    (dict(frozen_stages=6), 'frozen_stages'),
    (dict(frozen_stages=-2), 'frozen_stages'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VGG16d(**kwargs)


def test_bad_norm_cfg():
    with pytest.raises(TypeError, match='norm_cfg'):
        VGG16d(norm_cfg='BN')
