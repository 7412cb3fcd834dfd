# Copyright (c) mmcyc contributors. All rights reserved.
"""psa VGG-16 checkpoints -> mmcyc keys (psa_vgg2mmcyc.py)."""
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmcyc  # noqa: F401
from mmcyc.converters import (convert_psa_vgg16_state_dict,
                              convert_vgg16_checkpoint,
                              load_checkpoint_strict)
from mmcyc.converters.psa_vgg16_keys import (detect_vgg16_layout,
                                             psa_vgg16_backbone_keys)
from mmcyc.utils.state_dict_check import check_state_dict

init_default_scope('mmseg')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'psa_vgg2mmcyc.py')
WIDTH = 0.125

# psa network/vgg16d.py, written out: (name, in, out, kernel, dilation);
# pool1-3 after conv1_2, conv2_2, conv3_3 (3x3, /2, pad 1), pool4 after
# conv4_3 (3x3, /1, pad 1).
PSA_VGG = [
    ('conv1_1', 3, 64, 3, 1), ('conv1_2', 64, 64, 3, 1),
    ('conv2_1', 64, 128, 3, 1), ('conv2_2', 128, 128, 3, 1),
    ('conv3_1', 128, 256, 3, 1), ('conv3_2', 256, 256, 3, 1),
    ('conv3_3', 256, 256, 3, 1),
    ('conv4_1', 256, 512, 3, 1), ('conv4_2', 512, 512, 3, 1),
    ('conv4_3', 512, 512, 3, 1),
    ('conv5_1', 512, 512, 3, 2), ('conv5_2', 512, 512, 3, 2),
    ('conv5_3', 512, 512, 3, 2),
    ('fc6', 512, 1024, 3, None), ('fc7', 1024, 1024, 1, 1),
]
POOLS = {'conv1_2': 2, 'conv2_2': 2, 'conv3_3': 2, 'conv4_3': 1}


def psa_state_dict(width=WIDTH, layout='cls', num_classes=20, seed=0):
    """A psa-keyed VGG-16 state dict from the shapes of psa's modules."""
    gen = torch.Generator().manual_seed(seed)
    sd = OrderedDict()

    def w(c):
        return c if c == 3 else int(c * width)

    def conv(name, cin, cout, k, bias=True):
        sd[name + '.weight'] = torch.randn(
            cout, cin, k, k, generator=gen) * (2.0 / (cin * k * k))**0.5
        if bias:
            sd[name + '.bias'] = 0.01 * torch.randn(cout, generator=gen)

    for name, cin, cout, k, _ in PSA_VGG:
        conv(name, w(cin), w(cout), k)
    if layout == 'cls':
        conv('fc8', w(1024), num_classes, 1, bias=False)
    elif layout == 'aff':
        for name, cin, cout in (('8_3', 512, 64), ('8_4', 512, 128),
                                ('8_5', 1024, 256)):
            conv('f' + name, w(cin), cout, 1, bias=False)
            sd['gn' + name + '.weight'] = 0.5 + torch.rand(cout, generator=gen)
            sd['gn' + name + '.bias'] = 0.1 * torch.randn(cout, generator=gen)
        conv('f9', 448, 448, 1, bias=False)
    return sd


def psa_forward_as_dict(sd, x, fc6_dilation):
    """psa vgg16d.Net.forward_as_dict (eval), from the psa-keyed tensors."""
    taps = {}
    for name, *_, dil in PSA_VGG:
        dil = fc6_dilation if dil is None else dil
        x = F.relu(F.conv2d(x, sd[name + '.weight'], sd[name + '.bias'],
                            padding=dil * (sd[name + '.weight'].shape[-1] //
                                           2), dilation=dil))
        taps[name] = x
        if name in POOLS:
            x = F.max_pool2d(x, 3, POOLS[name], 1)
    return taps['conv4_3'], taps['conv5_3'], taps['fc7']


def model_cfg(config, **backbone):
    cfg = Config.fromfile(osp.join(ROOT, config)).model
    cfg.pop('data_preprocessor')
    cfg.backbone.update(init_cfg=None, **backbone)
    return cfg


def test_layout_detection():
    assert detect_vgg16_layout(psa_state_dict(layout='imagenet')) == \
        'imagenet'
    assert detect_vgg16_layout(psa_state_dict(layout='cls')) == 'cls'
    assert detect_vgg16_layout(psa_state_dict(layout='aff')) == 'aff'
    with pytest.raises(ValueError, match='ambiguous'):
        detect_vgg16_layout(['fc8.weight', 'f9.weight'])


def test_backbone_keys_are_psas():
    assert psa_vgg16_backbone_keys() == [
        f'{name}.{p}' for name, *_ in PSA_VGG for p in ('weight', 'bias')
    ]


@pytest.mark.parametrize('config', ['configs/cam_vgg16_voc.py',
                                    'configs/aff_vgg16_voc.py'])
def test_full_width_conversion_fits_the_voc_models(config):
    """No missing, unexpected or mis-shaped key at psa's full width."""
    layout = 'aff' if 'aff' in config else 'cls'
    converted, report = convert_psa_vgg16_state_dict(
        psa_state_dict(width=1.0, layout=layout))
    assert report.layout == layout and not report.absent
    with torch.device('meta'):
        model = MODELS.build(model_cfg(config))
    check_state_dict(model, converted, 'converted psa checkpoint')


def test_cls_checkpoint_gives_psas_cam(tmp_path):
    """vgg16_cls.forward_cam = sqrt(relu(fc8(conv5fc))), from psa's keys."""
    psa = psa_state_dict(layout='cls')
    src, dst = tmp_path / 'vgg16_cls.pth', tmp_path / 'cls_mmcyc.pth'
    torch.save(psa, src)
    report = convert_vgg16_checkpoint(str(src), str(dst))
    assert report.layout == 'cls' and report.converted == len(psa)
    model = MODELS.build(
        model_cfg('configs/cam_vgg16_voc.py', widen_factor=WIDTH)).eval()
    load_checkpoint_strict(model, str(dst))
    x = torch.randn(1, 3, 40, 33)
    with torch.no_grad():
        fc7 = psa_forward_as_dict(psa, x, fc6_dilation=1)[2]
        expected = torch.sqrt(F.relu(F.conv2d(fc7, psa['fc8.weight'])))
        assert torch.allclose(model(x, mode='tensor'), expected, atol=1e-4)


def test_aff_checkpoint_gives_psas_embedding(tmp_path):
    """vgg16_aff.forward up to f9 (fc6 dilation 4, GN 8/16/32, ELU)."""
    psa = psa_state_dict(layout='aff')
    src, dst = tmp_path / 'vgg16_aff.pth', tmp_path / 'aff_mmcyc.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in psa.items()}},
               src)
    convert_vgg16_checkpoint(str(src), str(dst), layout='aff')
    cfg = model_cfg('configs/aff_vgg16_voc.py', widen_factor=WIDTH)
    model = MODELS.build(cfg).eval()
    load_checkpoint_strict(model, str(dst))
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        taps = psa_forward_as_dict(psa, x, fc6_dilation=4)
        parts = [
            F.elu(F.group_norm(F.conv2d(t, psa[f'f{n}.weight']), g,
                               psa[f'gn{n}.weight'], psa[f'gn{n}.bias']))
            for t, n, g in zip(taps, ('8_3', '8_4', '8_5'), (8, 16, 32))
        ]
        expected = F.elu(F.conv2d(torch.cat(parts, 1), psa['f9.weight']))
        assert torch.allclose(model(x, mode='tensor'), expected, atol=1e-4)


def test_imagenet_weights_initialise_the_backbone(tmp_path):
    psa = psa_state_dict(layout='imagenet')
    src, dst = tmp_path / 'vgg16_20M.pth', tmp_path / 'vgg16d_mmcyc.pth'
    torch.save(psa, src)
    convert_vgg16_checkpoint(str(src), str(dst))
    cfg = model_cfg('configs/cam_vgg16_voc.py', widen_factor=WIDTH)
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(dst),
                                 prefix='backbone.')
    model = MODELS.build(cfg)
    model.init_weights()
    for key, value in psa.items():
        assert torch.equal(model.backbone.state_dict()[key], value), key


def test_unknown_keys_and_bad_layout():
    psa = psa_state_dict(layout='cls')
    psa['fc9.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match='fc9.weight'):
        convert_psa_vgg16_state_dict(psa)
    converted, report = convert_psa_vgg16_state_dict(psa, allow_unknown=True)
    assert report.unknown == ['fc9.weight']
    assert 'fc9.weight' not in converted
    with pytest.raises(ValueError, match='layout'):
        convert_psa_vgg16_state_dict(psa, layout='resnet38')
    # an aff checkpoint read as cls: the head keys fit no rule
    with pytest.raises(ValueError, match='f8_3.weight'):
        convert_psa_vgg16_state_dict(psa_state_dict(layout='aff'),
                                     layout='cls')


def test_cli(tmp_path):
    src, dst = tmp_path / 'vgg16_cls.pth', tmp_path / 'out' / 'cls.pth'
    torch.save(psa_state_dict(layout='cls'), src)
    run = subprocess.run([sys.executable, TOOL, str(src), str(dst)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "layout 'cls'" in run.stdout
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['layout'] == 'cls'
    assert 'classifier.weight' in saved['state_dict']
    run = subprocess.run(
        [sys.executable, TOOL, str(src), str(dst), '--layout', 'aff'],
        capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and 'fc8.weight' in run.stderr
