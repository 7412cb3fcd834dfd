# Copyright (c) mmcyc contributors. All rights reserved.
"""AffinityEmbedHead's optional per-level norm (psa's VGG-16 vgg16_aff)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmcyc  # noqa: F401
from mmcyc.models.heads.affinity_embed_head import (AffinityEmbedHead,
                                                    level_norm_cfgs)

PSA_VGG_GN = dict(type='GN', num_groups=(8, 16, 32))


def levels(n=2, size=(5, 6)):
    torch.manual_seed(0)
    return [torch.randn(n, c, *size) for c in (512, 512, 1024)]


def test_default_has_no_norm():
    head = AffinityEmbedHead(in_channels=(512, 512, 1024))
    assert not hasattr(head, 'norms')
    assert set(head.state_dict()) == {
        'projs.0.weight', 'projs.1.weight', 'projs.2.weight', 'fuse.weight'
    }


def test_psa_vgg_head_by_hand():
    """psa vgg16_aff.forward: elu(gn8_i(f8_i(x_i))), concat, elu(f9(.))."""
    head = MODELS.build(
        dict(type='AffinityEmbedHead', in_channels=(512, 512, 1024),
             norm_cfg=PSA_VGG_GN))
    # psa's parameter shapes: f8_3 512->64, f8_4 512->128, f8_5 1024->256
    # (no bias), GroupNorm 8/16/32 groups, f9 448->448 (no bias)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {
        'projs.0.weight': (64, 512, 1, 1),
        'projs.1.weight': (128, 512, 1, 1),
        'projs.2.weight': (256, 1024, 1, 1),
        'norms.0.weight': (64, ), 'norms.0.bias': (64, ),
        'norms.1.weight': (128, ), 'norms.1.bias': (128, ),
        'norms.2.weight': (256, ), 'norms.2.bias': (256, ),
        'fuse.weight': (448, 448, 1, 1),
    }
    assert [n.num_groups for n in head.norms] == [8, 16, 32]
    with torch.no_grad():
        for norm in head.norms:  # not the identity GN init
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    feats = levels()
    with torch.no_grad():
        parts = []
        for x, proj, norm, groups in zip(feats, head.projs, head.norms,
                                         (8, 16, 32)):
            y = F.conv2d(x, proj.weight)
            y = F.group_norm(y, groups, norm.weight, norm.bias, eps=1e-5)
            parts.append(F.elu(y))
        expected = F.elu(F.conv2d(torch.cat(parts, 1), head.fuse.weight))
        out = head(feats)
    assert out.shape == (2, 448, 5, 6)
    assert torch.allclose(out, expected, atol=1e-5)


def test_group_norm_statistics_per_level():
    """With unit affine parameters, each group of a level's projection has
    zero mean and unit variance before the ELU."""
    head = AffinityEmbedHead(in_channels=(512, 512, 1024),
                             norm_cfg=PSA_VGG_GN)
    feats = levels(n=1)
    with torch.no_grad():
        y = head.norms[1](head.projs[1](feats[1]))  # (1, 128, 5, 6)
    grouped = y.reshape(1, 16, -1)  # 16 groups of 8 channels
    assert torch.allclose(grouped.mean(-1), torch.zeros(1, 16), atol=1e-5)
    assert torch.allclose(grouped.var(-1, unbiased=False),
                          torch.ones(1, 16), atol=1e-3)


def test_shared_norm_cfg():
    cfgs = level_norm_cfgs(dict(type='GN', num_groups=4), 3)
    assert cfgs == [dict(type='GN', num_groups=4)] * 3
    head = AffinityEmbedHead(in_channels=(8, 8), proj_channels=(8, 16),
                             norm_cfg=dict(type='BN'))
    assert all(isinstance(n, nn.BatchNorm2d) for n in head.norms)


@pytest.mark.parametrize('norm_cfg, error, match', [
    (dict(type='GN', num_groups=(8, 16)), ValueError, 'one value per level'),
    ('GN', TypeError, 'norm_cfg'),
    (dict(num_groups=8), TypeError, 'norm_cfg'),
])
def test_bad_norm_cfg(norm_cfg, error, match):
    with pytest.raises(error, match=match):
        AffinityEmbedHead(in_channels=(512, 512, 1024), norm_cfg=norm_cfg)
