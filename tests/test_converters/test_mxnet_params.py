# Copyright (c) mmcyc contributors. All rights reserved.
"""Reader / writer of MXNet ``mx.nd.save`` files, checked byte by byte."""
import io
import struct

import numpy as np
import pytest

from mmcyc.converters.mxnet_params import (is_mxnet_params,
                                             load_mxnet_params,
                                             read_ndarray_list)
from mxnet_writer import save_mxnet_params  # tests/mxnet_writer.py


def handmade_file(path, records, names):
    """Assemble an NDArray-list file from raw records (MXNet ndarray.cc)."""
    blob = struct.pack('<QQQ', 0x112, 0, len(records)) + b''.join(records)
    blob += struct.pack('<Q', len(names))
    for name in names:
        blob += struct.pack('<Q', len(name)) + name.encode()
    with open(path, 'wb') as f:
        f.write(blob)


def v2_record(array, flag):
    return (struct.pack('<Ii', 0xF993FAC9, 0) +
            struct.pack(f'<i{array.ndim}q', array.ndim, *array.shape) +
            struct.pack('<iii', 2, 0, flag) +  # saved from gpu(0)
            array.tobytes())


def legacy_record(array, flag):
    return (struct.pack(f'<I{array.ndim}I', array.ndim, *array.shape) +
            struct.pack('<iii', 1, 0, flag) + array.tobytes())


def test_reads_handmade_v2_and_legacy_records(tmp_path):
    weight = np.arange(24, dtype='<f4').reshape(2, 3, 2, 2)
    steps = np.array([7, -1], dtype='<i8')
    mean = np.linspace(0, 1, 5).astype('<f8')
    path = str(tmp_path / 'hand.params')
    handmade_file(path, [
        v2_record(weight, 0),
        v2_record(steps, 6),
        legacy_record(mean, 1),
    ], ['arg:res2a_branch1_weight', 'aux:steps', 'aux:bn7_moving_mean'])
    assert is_mxnet_params(path)
    params = load_mxnet_params(path)
    assert list(params) == [
        'arg:res2a_branch1_weight', 'aux:steps', 'aux:bn7_moving_mean'
    ]
    np.testing.assert_array_equal(params['arg:res2a_branch1_weight'], weight)
    assert params['aux:steps'].dtype == np.int64
    np.testing.assert_array_equal(params['aux:steps'], steps)
    np.testing.assert_array_equal(params['aux:bn7_moving_mean'], mean)
    assert params['arg:res2a_branch1_weight'].flags.writeable


def test_writer_matches_handmade_bytes(tmp_path):
    weight = np.random.RandomState(0).randn(4, 3, 1, 1).astype(np.float32)
    ours, hand = str(tmp_path / 'ours.params'), str(tmp_path / 'hand.params')
    save_mxnet_params(ours, {'arg:conv1a_weight': weight})
    record = v2_record(weight, 0).replace(
        struct.pack('<iii', 2, 0, 0), struct.pack('<iii', 1, 0, 0))
    handmade_file(hand, [record], ['arg:conv1a_weight'])
    with open(ours, 'rb') as a, open(hand, 'rb') as b:
        assert a.read() == b.read()


@pytest.mark.parametrize('version', [0, 1, 2, 3])
@pytest.mark.parametrize('dtype', ['float32', 'float16', 'float64', 'int32',
                                   'uint8'])
def test_roundtrip(tmp_path, version, dtype):
    rng = np.random.RandomState(1)
    arrays = {
        'arg:a': (rng.rand(3, 4, 5) * 100).astype(dtype),
        'aux:b': (rng.rand(7) * 100).astype(dtype),
    }
    path = str(tmp_path / 'x.params')
    save_mxnet_params(path, arrays, version=version)
    loaded = load_mxnet_params(path)
    assert list(loaded) == list(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_v3_scalar(tmp_path):
    path = str(tmp_path / 's.params')
    save_mxnet_params(path, {'s': np.float32(2.5)}, version=3)
    assert load_mxnet_params(path)['s'].shape == ()
    with pytest.raises(ValueError, match='scalar'):
        save_mxnet_params(path, {'s': np.float32(2.5)}, version=2)


def test_errors(tmp_path):
    path = str(tmp_path / 'bad.params')
    with open(path, 'wb') as f:
        f.write(struct.pack('<QQ', 0x113, 0))
    assert not is_mxnet_params(path)
    with pytest.raises(ValueError, match=r'bad\.params.*0x113'):
        load_mxnet_params(path)

    save_mxnet_params(path, {'w': np.zeros((2, 2), np.float32)})
    with open(path, 'rb') as f:
        blob = f.read()
    with open(path, 'wb') as f:
        f.write(blob[:40])
    with pytest.raises(ValueError, match='truncated'):
        load_mxnet_params(path)

    sparse = struct.pack('<Ii', 0xF993FAC9, 1)  # row_sparse storage
    handmade_file(path, [sparse], ['w'])
    with pytest.raises(ValueError, match='sparse'):
        load_mxnet_params(path)

    handmade_file(path, [legacy_record(np.zeros(2, '<f4'), 0)], [])
    with pytest.raises(ValueError, match='unnamed'):
        load_mxnet_params(path)

    with pytest.raises(ValueError, match='version'):
        save_mxnet_params(path, {}, version=4)


def test_reads_from_memory_stream():
    record = legacy_record(np.arange(3, dtype='<i4'), 4)
    blob = struct.pack('<QQQ', 0x112, 0, 1) + record + struct.pack('<Q', 0)
    arrays, names = read_ndarray_list(io.BytesIO(blob))
    assert names == []
    np.testing.assert_array_equal(arrays[0], [0, 1, 2])
    with pytest.raises(ValueError, match='truncated'):
        read_ndarray_list(io.BytesIO(blob[:-12]))
