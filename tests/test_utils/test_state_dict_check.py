"""One check of a state dict against a model: keys and shapes."""
import pytest
import torch
import torch.nn as nn

from mmcyc.utils.state_dict_check import (check_state_dict,
                                          state_dict_mismatch,
                                          unwrap_state_dict)


def small_model():
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))


def test_fitting_state_dict_passes():
    model = small_model()
    state = model.state_dict()
    assert state_dict_mismatch(model, state) is None
    # BatchNorm fills num_batches_tracked in itself
    state.pop('1.num_batches_tracked')
    assert state_dict_mismatch(model, state) is None
    check_state_dict(model, state, 'checkpoint a.pth')


def test_every_kind_of_mismatch_is_listed():
    model = small_model()
    state = model.state_dict()
    state.pop('0.bias')
    state['2.weight'] = torch.zeros(1)
    state['1.weight'] = torch.zeros(5)
    assert state_dict_mismatch(model, state) == (
        "1 missing keys ['0.bias'], 1 unexpected keys ['2.weight'], "
        "1 shape mismatches ['1.weight: checkpoint (5,) vs model (4,)']")
    with pytest.raises(ValueError) as err:
        check_state_dict(model, state, 'checkpoint b.pth', 'the test net',
                         hint='; expected X')
    assert str(err.value) == (
        'checkpoint b.pth does not match the test net: '
        + state_dict_mismatch(model, state) + '; expected X')


def test_unexpected_keys_may_be_allowed():
    model = small_model()
    state = dict(model.state_dict(), extra=torch.zeros(1))
    assert state_dict_mismatch(model, state, allow_unexpected=True) is None
    state['0.weight'] = torch.zeros(4, 3, 3, 3)
    assert state_dict_mismatch(model, state, allow_unexpected=True) == (
        "0 missing keys [], 1 shape mismatches "
        "['0.weight: checkpoint (4, 3, 3, 3) vs model (4, 3, 1, 1)']")
    with pytest.raises(ValueError, match='Sequential: 0 missing keys'):
        check_state_dict(model, state, 'c.pth', allow_unexpected=True)


def test_unwrap_state_dict():
    weight = torch.ones(2)
    assert unwrap_state_dict({'state_dict': {'module.a': weight}}) == \
        {'a': weight}
    with pytest.raises(ValueError, match='x.pth: expected a state dict.*meta'):
        unwrap_state_dict({'a': weight, 'meta': {}}, 'x.pth')
