"""FastAccuracyFCNHead: mmseg's FCNHead, but the logged accuracy's cost."""
import copy

import torch
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmcyc  # noqa: F401  (registers the head)


def samples(labels):
    out = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label[None])
        out.append(sample)
    return out


def head_cfg(type_, loss_decode=None):
    cfg = dict(type=type_, in_channels=8, channels=4, num_convs=1,
               num_classes=5, norm_cfg=dict(type='BN', requires_grad=True))
    if loss_decode is not None:
        cfg['loss_decode'] = loss_decode
    return cfg


def test_same_losses_gradients_and_accuracy_as_mmseg_fcn_head():
    # two losses of one name: the sum path of loss_by_feat
    loss_decode = [
        dict(type='CrossEntropyLoss', loss_weight=1.0),
        dict(type='CrossEntropyLoss', loss_weight=0.5)
    ]
    torch.manual_seed(0)
    stock = MODELS.build(head_cfg('FCNHead', loss_decode))
    fast = MODELS.build(head_cfg('FastAccuracyFCNHead', loss_decode))
    assert isinstance(fast, FCNHead)
    fast.load_state_dict(stock.state_dict())  # the same keys
    feats = torch.randn(2, 8, 6, 6)
    labels = torch.randint(0, 5, (2, 24, 24))
    labels[0, :3] = 255
    batch = samples(labels)
    losses = []
    for head in (stock, fast):
        head.train()
        torch.manual_seed(1)  # the same dropout mask
        loss = head.loss_by_feat(head.forward([feats]), copy.deepcopy(batch))
        loss['loss_ce'].backward()
        losses.append(loss)
    assert losses[0].keys() == losses[1].keys() == {'loss_ce', 'acc_seg'}
    assert torch.equal(losses[0]['loss_ce'], losses[1]['loss_ce'])
    assert torch.allclose(losses[0]['acc_seg'], losses[1]['acc_seg'],
                          rtol=0, atol=1e-5)
    for (name, a), b in zip(stock.named_parameters(), fast.parameters()):
        assert torch.equal(a.grad, b.grad), name


def test_upsample_by_matmul_gives_the_losses_and_gradients_to_rounding():
    torch.manual_seed(0)
    stock = MODELS.build(head_cfg('FCNHead'))
    fast = MODELS.build(
        dict(head_cfg('FastAccuracyFCNHead'), upsample_by_matmul=True))
    assert fast.upsample_by_matmul
    assert not MODELS.build(head_cfg('FastAccuracyFCNHead')).upsample_by_matmul
    fast.load_state_dict(stock.state_dict())
    feats = torch.randn(2, 8, 6, 6)
    labels = torch.randint(0, 5, (2, 48, 48))
    labels[1, -5:] = 255
    batch = samples(labels)
    losses = []
    for head in (stock, fast):
        head.train()
        torch.manual_seed(1)
        loss = head.loss_by_feat(head.forward([feats]), copy.deepcopy(batch))
        loss['loss_ce'].backward()
        losses.append(loss)
    assert torch.allclose(losses[0]['loss_ce'], losses[1]['loss_ce'],
                          rtol=1e-6, atol=0)
    assert torch.allclose(losses[0]['acc_seg'], losses[1]['acc_seg'],
                          atol=1e-5)
    for (name, a), b in zip(stock.named_parameters(), fast.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), name
    # predictions do not use it: the same map as the stock head's
    stock.eval(), fast.eval()
    meta = [dict(img_shape=(48, 48), pad_shape=(48, 48))] * 2
    with torch.no_grad():
        assert torch.equal(stock.predict([feats], meta, None),
                           fast.predict([feats], meta, None))
