import pytest
import torch
import torch.nn.functional as F

from mmcyc.models.losses import (MultiLabelSoftMarginLoss,
                                 multilabel_soft_margin_loss)


def test_matches_torch_multilabel_soft_margin_loss():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 20, generator=gen) * 5
    labels = (torch.rand(6, 20, generator=gen) > 0.7).float()
    expected = F.multilabel_soft_margin_loss(logits, labels)
    assert torch.allclose(
        multilabel_soft_margin_loss(logits, labels), expected, atol=1e-6)


def test_hand_computed_eq12():
    # one image, two classes: y = (1, 0), x = (0, log 3)
    logits = torch.tensor([[0.0, float(torch.log(torch.tensor(3.0)))]])
    labels = torch.tensor([[1.0, 0.0]])
    # -(log sigmoid(0) + log(1 - sigmoid(log 3))) / 2 = (log 2 + log 4) / 2
    expected = (torch.log(torch.tensor(2.0)) + torch.log(torch.tensor(4.0))) / 2
    assert torch.allclose(multilabel_soft_margin_loss(logits, labels), expected)


def test_large_logits_stay_finite_in_bf16():
    logits = torch.tensor([[300.0, -300.0]], dtype=torch.bfloat16)
    labels = torch.tensor([[0.0, 1.0]])
    loss = multilabel_soft_margin_loss(logits, labels)
    assert torch.isfinite(loss) and loss > 100


def test_module_weight_and_name():
    loss = MultiLabelSoftMarginLoss(loss_weight=0.1, loss_name='loss_aux')
    logits, labels = torch.zeros(2, 3), torch.ones(2, 3)
    assert loss.loss_name == 'loss_aux'
    assert torch.allclose(loss(logits, labels),
                          0.1 * F.multilabel_soft_margin_loss(logits, labels))
    with pytest.raises(ValueError, match='loss_'):
        MultiLabelSoftMarginLoss(loss_name='cls')
    with pytest.raises(ValueError, match='same shape'):
        loss(torch.zeros(2, 3), torch.zeros(2, 4))
