# Copyright (c) mmcyc contributors. All rights reserved.
"""psa / MXNet ResNet-38 checkpoints -> mmcyc keys (psa2mmcyc.py)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.runner import load_checkpoint

from mmcyc.models.backbones import ResNet38
from mmcyc.converters.psa_keys import (convert_checkpoint,
                                       convert_psa_state_dict, detect_layout,
                                       load_checkpoint_strict,
                                       mxnet_key_to_psa, psa_backbone_keys)
from mmcyc.utils.state_dict_check import check_state_dict_keys
from mxnet_writer import save_mxnet_params  # tests/mxnet_writer.py

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'psa2mmcyc.py')
WIDTH = 0.125  # tiny: channels / 8

# psa resnet38d.Net, written out: (name, in, mid, out, stride, first_dil,
# dil) for basic blocks, then the bottlenecks (name, in, out, dil).
PSA_BASIC = [('b2', 64, 128, 128, 2, 1, 1), ('b2_1', 128, 128, 128, 1, 1, 1),
             ('b2_2', 128, 128, 128, 1, 1, 1),
             ('b3', 128, 256, 256, 2, 1, 1), ('b3_1', 256, 256, 256, 1, 1, 1),
             ('b3_2', 256, 256, 256, 1, 1, 1),
             ('b4', 256, 512, 512, 2, 1, 1)] + [
                 (f'b4_{i}', 512, 512, 512, 1, 1, 1) for i in range(1, 6)
             ] + [('b5', 512, 512, 1024, 1, 1, 2),
                  ('b5_1', 1024, 512, 1024, 1, 2, 2),
                  ('b5_2', 1024, 512, 1024, 1, 2, 2)]
PSA_BOTTLENECK = [('b6', 1024, 2048, 4), ('b7', 2048, 4096, 4)]


def psa_state_dict(width=WIDTH, seed=0, heads='cls'):
    """A psa-keyed state dict with random but well-scaled values."""
    gen = torch.Generator().manual_seed(seed)
    sd = OrderedDict()

    def w(c):
        return int(c * width)

    def conv(name, cin, cout, k):
        fan_in = cin * k * k
        sd[name + '.weight'] = torch.randn(
            cout, cin, k, k, generator=gen) * (1.0 / fan_in)**0.5

    def bn(name, c):
        sd[name + '.weight'] = 0.5 + torch.rand(c, generator=gen)
        sd[name + '.bias'] = 0.1 * torch.randn(c, generator=gen)
        sd[name + '.running_mean'] = 0.1 * torch.randn(c, generator=gen)
        sd[name + '.running_var'] = 0.5 + torch.rand(c, generator=gen)

    conv('conv1a', 3, w(64), 3)
    for name, cin, mid, cout, stride, _, _ in PSA_BASIC:
        bn(f'{name}.bn_branch2a', w(cin))
        conv(f'{name}.conv_branch2a', w(cin), w(mid), 3)
        bn(f'{name}.bn_branch2b1', w(mid))
        conv(f'{name}.conv_branch2b1', w(mid), w(cout), 3)
        if cin != cout or stride != 1:
            conv(f'{name}.conv_branch1', w(cin), w(cout), 1)
    for name, cin, cout, _ in PSA_BOTTLENECK:
        bn(f'{name}.bn_branch2a', w(cin))
        conv(f'{name}.conv_branch2a', w(cin), w(cout) // 4, 1)
        bn(f'{name}.bn_branch2b1', w(cout) // 4)
        conv(f'{name}.conv_branch2b1', w(cout) // 4, w(cout) // 2, 3)
        bn(f'{name}.bn_branch2b2', w(cout) // 2)
        conv(f'{name}.conv_branch2b2', w(cout) // 2, w(cout), 1)
        conv(f'{name}.conv_branch1', w(cin), w(cout), 1)
    bn('bn7', w(4096))
    if heads == 'cls':
        conv('fc8', w(4096), 20, 1)
    elif heads == 'aff':
        conv('f8_3', w(512), 64, 1)
        conv('f8_4', w(1024), 128, 1)
        conv('f8_5', w(4096), 256, 1)
        conv('f9', 448, 448, 1)
    return sd


def psa_cam_reference(sd, x):
    """psa resnet38_cls.Net.forward_cam, in functional ops on its keys."""

    def bn(name, t):
        return F.batch_norm(t, sd[name + '.running_mean'],
                            sd[name + '.running_var'], sd[name + '.weight'],
                            sd[name + '.bias'], False, 0.0, 1e-5)

    x = F.conv2d(x, sd['conv1a.weight'], padding=1)
    for name, _, _, _, stride, first_dil, dil in PSA_BASIC:
        h = F.relu(bn(name + '.bn_branch2a', x))
        if name + '.conv_branch1.weight' in sd:
            shortcut = F.conv2d(h, sd[name + '.conv_branch1.weight'],
                                stride=stride)
        else:
            shortcut = x
        y = F.conv2d(h, sd[name + '.conv_branch2a.weight'], stride=stride,
                     padding=first_dil, dilation=first_dil)
        y = F.conv2d(F.relu(bn(name + '.bn_branch2b1', y)),
                     sd[name + '.conv_branch2b1.weight'], padding=dil,
                     dilation=dil)
        x = shortcut + y
    for name, _, _, dil in PSA_BOTTLENECK:
        h = F.relu(bn(name + '.bn_branch2a', x))
        y = F.conv2d(h, sd[name + '.conv_branch2a.weight'])
        y = F.conv2d(F.relu(bn(name + '.bn_branch2b1', y)),
                     sd[name + '.conv_branch2b1.weight'], padding=dil,
                     dilation=dil)
        y = F.conv2d(F.relu(bn(name + '.bn_branch2b2', y)),
                     sd[name + '.conv_branch2b2.weight'])
        x = F.conv2d(h, sd[name + '.conv_branch1.weight']) + y
    conv6 = F.relu(bn('bn7', x))
    return F.relu(F.conv2d(conv6, sd['fc8.weight']))


class TinyCAMNet(nn.Module):
    """Backbone + 1x1 classifier named as mmcyc's CAMClassifier names them."""

    def __init__(self):
        super().__init__()
        self.backbone = ResNet38(widen_factor=WIDTH, out_indices=(3, ))
        self.classifier = nn.Conv2d(
            self.backbone.out_channels[0], 20, 1, bias=False)

    def forward(self, x):
        return F.relu(F.conv2d(self.backbone(x)[0], self.classifier.weight))


def mxnet_name(psa_key):
    """Inverse of psa's convert_mxnet_to_torch for one key (test helper)."""
    module, param = psa_key.rsplit('.', 1)
    bn_param = dict(
        weight='gamma', bias='beta', running_mean='moving_mean',
        running_var='moving_var')
    if module == 'conv1a':
        return 'arg:conv1a_weight'
    if module == 'bn7':
        kind = 'aux' if param.startswith('running') else 'arg'
        return f'{kind}:bn7_{bn_param[param]}'
    block, layer = module.split('.')
    stage, _, index = block[1:].partition('_')
    unit = stage + ('b' + index if index else 'a')
    layer_type, branch = layer.split('_', 1)
    if layer_type == 'conv':
        return f'arg:res{unit}_{branch}_weight'
    kind = 'aux' if param.startswith('running') else 'arg'
    return f'{kind}:bn{unit}_{branch}_{bn_param[param]}'


def test_cls_checkpoint_gives_reference_cam(tmp_path):
    psa = psa_state_dict(heads='cls')
    src = str(tmp_path / 'res38_cls.pth')
    # psa's checkpoints date from PyTorch 0.4: a DataParallel prefix and the
    # legacy (non-zip) serialisation are both accepted.
    torch.save(
        OrderedDict(('module.' + k, v) for k, v in psa.items()),
        src,
        _use_new_zipfile_serialization=False)
    dst = str(tmp_path / 'out' / 'res38_cls_mmcyc.pth')
    report = convert_checkpoint(src, dst)
    assert report.layout == 'cls'
    assert report.unknown == [] and report.dropped == []
    assert report.absent == []

    net = TinyCAMNet().eval()
    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['layout'] == 'cls'
    assert check_state_dict_keys(net, checkpoint['state_dict']) == ([], [])
    net.load_state_dict(checkpoint['state_dict'], strict=True)
    torch.testing.assert_close(net.classifier.weight, psa['fc8.weight'])

    x = torch.randn(2, 3, 40, 48)
    with torch.no_grad():
        cam = net(x)
        expected = psa_cam_reference(psa, x)
    assert cam.shape == (2, 20, 5, 6)
    assert expected.abs().max() > 0.1  # a non-degenerate comparison
    torch.testing.assert_close(cam, expected, rtol=1e-4, atol=1e-5)


def test_converted_checkpoint_loads_with_mmengine(tmp_path):
    src = str(tmp_path / 'res38_cls.pth')
    torch.save({'state_dict': psa_state_dict(heads='cls')}, src)
    dst = str(tmp_path / 'converted.pth')
    convert_checkpoint(src, dst, layout='cls')
    net = TinyCAMNet()
    load_checkpoint(net, dst, map_location='cpu', strict=True)
    # The backbone alone through its init_cfg.
    backbone = ResNet38(
        widen_factor=WIDTH,
        init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='backbone.'))
    backbone.init_weights()
    torch.testing.assert_close(backbone.b7.conv_branch2b1.weight,
                               net.backbone.b7.conv_branch2b1.weight)


def test_aff_layout_key_mapping():
    psa = psa_state_dict(heads='aff')
    assert detect_layout(psa) == 'aff'
    converted, report = convert_psa_state_dict(psa)
    assert report.layout == 'aff'
    heads = {
        'embed_head.projs.0.weight': 'f8_3.weight',
        'embed_head.projs.1.weight': 'f8_4.weight',
        'embed_head.projs.2.weight': 'f8_5.weight',
        'embed_head.fuse.weight': 'f9.weight',
    }
    for new, old in heads.items():
        assert converted[new] is psa[old]
    backbone_keys = {
        k[len('backbone.'):]
        for k in converted if k.startswith('backbone.')
    }
    assert set(converted) - {'backbone.' + k
                             for k in backbone_keys} == set(heads)
    assert {k for k in backbone_keys
            if not k.endswith('num_batches_tracked')} == set(psa) - set(
                heads.values())
    assert converted['backbone.b4_5.bn_branch2b1.running_var'] is psa[
        'b4_5.bn_branch2b1.running_var']


def test_key_table_matches_resnet38():
    with torch.device('meta'):
        model = ResNet38()
    assert set(psa_backbone_keys(with_num_batches_tracked=True)) == set(
        model.state_dict())
    assert set(psa_state_dict(heads=None)) == set(psa_backbone_keys())


def test_imagenet_layout_drops_classifier_and_rejects_unknown(tmp_path):
    psa = psa_state_dict(heads=None)
    psa['fc1000.weight'] = torch.zeros(1000, 512)
    psa['fc1000.bias'] = torch.zeros(1000)
    converted, report = convert_psa_state_dict(psa, source='imnet.pth')
    assert report.layout == 'imagenet'
    assert report.dropped == ['fc1000.weight', 'fc1000.bias']
    assert not any('fc1000' in k for k in converted)
    assert len(report.added) == 2 * 15 + 3 * 2 + 1  # one per BatchNorm
    assert 'fc1000.weight' in str(report)

    psa['f7.weight'] = torch.zeros(1)
    src = str(tmp_path / 'odd.pth')
    torch.save(psa, src)
    with pytest.raises(ValueError, match=r'odd\.pth.*f7\.weight'):
        convert_checkpoint(src, str(tmp_path / 'never.pth'))
    assert not osp.exists(tmp_path / 'never.pth')
    report = convert_checkpoint(
        src, str(tmp_path / 'kept.pth'), allow_unknown=True)
    assert report.unknown == ['f7.weight']


def test_explicit_layout_treats_other_heads_as_unknown():
    with pytest.raises(ValueError, match=r'fc8\.weight'):
        convert_psa_state_dict(psa_state_dict(heads='cls'), layout='aff')
    with pytest.raises(ValueError, match='layout'):
        convert_psa_state_dict(psa_state_dict(heads='cls'), layout='voc')


@pytest.mark.parametrize('name, key', [
    ('arg:conv1a_weight', 'conv1a.weight'),
    ('arg:res2a_branch1_weight', 'b2.conv_branch1.weight'),
    ('arg:bn2a_branch2a_gamma', 'b2.bn_branch2a.weight'),
    ('aux:bn4b5_branch2b1_moving_var', 'b4_5.bn_branch2b1.running_var'),
    ('res5b2_branch2b1_weight', 'b5_2.conv_branch2b1.weight'),
    ('aux:bn6a_branch2b2_moving_mean', 'b6.bn_branch2b2.running_mean'),
    ('arg:bn7_beta', 'bn7.bias'),
    ('aux:bn7_moving_mean', 'bn7.running_mean'),
    ('arg:linear1000_weight', None),
])
def test_mxnet_key_rule(name, key):
    assert mxnet_key_to_psa(name) == key


def test_mxnet_key_rule_rejects_other_names():
    with pytest.raises(ValueError, match='res9a_branch1_weight'):
        mxnet_key_to_psa('arg:res9a_branch1_weight')
    with pytest.raises(ValueError, match='bn2a_branch2a_alpha'):
        mxnet_key_to_psa('arg:bn2a_branch2a_alpha')


def test_mxnet_roundtrip_loads_into_backbone(tmp_path):
    psa = psa_state_dict(heads=None)
    arrays = OrderedDict((mxnet_name(k), v.numpy()) for k, v in psa.items())
    arrays['arg:linear1000_weight'] = torch.zeros(10, 512).numpy()
    arrays['arg:linear1000_bias'] = torch.zeros(10).numpy()
    src = str(tmp_path / 'ilsvrc-cls_rna-a1_cls1000_ep-0001.params')
    save_mxnet_params(src, arrays)
    dst = str(tmp_path / 'resnet38_imagenet.pth')
    report = convert_checkpoint(src, dst)
    assert report.layout == 'imagenet'
    assert report.dropped == ['arg:linear1000_weight', 'arg:linear1000_bias']

    backbone = ResNet38(widen_factor=WIDTH)
    checkpoint = load_checkpoint_strict(backbone, dst, prefix='backbone.')
    # num_batches_tracked is absent from MXNet files: the converter adds it.
    assert 'backbone.bn7.num_batches_tracked' in checkpoint['state_dict']
    own = backbone.state_dict()
    for key, value in psa.items():
        torch.testing.assert_close(own[key], value, rtol=0, atol=0)


def test_mxnet_unknown_name_names_file(tmp_path):
    src = str(tmp_path / 'odd.params')
    save_mxnet_params(src, {'arg:fc_weight': torch.zeros(2).numpy()})
    with pytest.raises(ValueError, match=r'odd\.params.*arg:fc_weight'):
        convert_checkpoint(src, str(tmp_path / 'never.pth'))
    with pytest.raises(ValueError, match='imagenet'):
        convert_checkpoint(src, str(tmp_path / 'never.pth'), layout='cls',
                           allow_unknown=True)


def test_strict_loader_lists_wrong_keys(tmp_path):
    backbone = ResNet38(widen_factor=WIDTH, with_b7=False, out_indices=(2, ))
    state_dict = backbone.state_dict()
    state_dict.pop('b6.conv_branch1.weight')
    state_dict['b6.conv_branch9.weight'] = torch.zeros(1)
    state_dict['conv1a.weight'] = torch.zeros(1, 3, 3, 3)
    path = str(tmp_path / 'wrong.pth')
    torch.save({'state_dict': state_dict}, path)
    with pytest.raises(ValueError) as err:
        load_checkpoint_strict(backbone, path)
    message = str(err.value)
    assert 'wrong.pth' in message
    assert "1 missing keys ['b6.conv_branch1.weight']" in message
    assert "1 unexpected keys ['b6.conv_branch9.weight']" in message
    assert 'conv1a.weight: checkpoint (1, 3, 3, 3)' in message
    missing, unexpected = check_state_dict_keys(backbone, state_dict)
    assert missing == ['b6.conv_branch1.weight']
    assert unexpected == ['b6.conv_branch9.weight']


def _load_tool():
    spec = importlib.util.spec_from_file_location('psa2mmcyc', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_main_reports_unknown_keys(tmp_path, capsys):
    psa = psa_state_dict(heads=None)
    psa['mystery.weight'] = torch.zeros(1)
    src = str(tmp_path / 'mystery.pth')
    torch.save(psa, src)
    main = _load_tool().main
    assert main([src, str(tmp_path / 'x.pth')]) == 1
    err = capsys.readouterr().err
    assert 'mystery.pth' in err and 'mystery.weight' in err
    assert main([src, str(tmp_path / 'x.pth'), '--allow-unknown']) == 0
    assert 'unknown (1): mystery.weight' in capsys.readouterr().out


def test_cli_subprocess(tmp_path):
    src = str(tmp_path / 'res38_aff.pth')
    torch.save(psa_state_dict(heads='aff'), src)
    dst = str(tmp_path / 'res38_aff_mmcyc.pth')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    result = subprocess.run(
        [sys.executable, TOOL, src, dst, '--layout', 'aff'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert "layout 'aff'" in result.stdout
    state_dict = torch.load(dst, weights_only=True)['state_dict']
    assert state_dict['embed_head.fuse.weight'].shape == (448, 448, 1, 1)
