# Copyright (c) mmcyc contributors. All rights reserved.
"""Read MXNet ``.params`` files (``mx.nd.save``) without MXNet (the writer of
the tests' files is ``tests/mxnet_writer.py``).

The layout follows MXNet's ``src/ndarray/ndarray.cc`` (``NDArray::Save`` /
``NDArray::Load`` and the list variant taking names), everything
little-endian::

    uint64 0x112 (list magic) | uint64 reserved (0)
    uint64 n | n x NDArray
    uint64 m | m x (uint64 length, bytes)        names, m == 0 or m == n

    NDArray, version 2 / 3 (magic 0xF993FAC9 / 0xF993FACA):
        uint32 magic | int32 storage type (0 dense)
        int32 ndim | ndim x int64 dims           shape (v2: ndim 0 = empty;
                                                  v3: ndim -1 = empty,
                                                  ndim 0 = scalar)
        int32 dev_type | int32 dev_id             context
        int32 dtype flag | raw data
    NDArray, version 1 (magic 0xF993FAC8): as version 2 without the storage
        type.
    NDArray, legacy (no magic): uint32 ndim | ndim x uint32 dims |
        context | dtype flag | raw data.

Only dense arrays are supported; sparse ones raise ``ValueError``.
"""
import io
import os
import struct
from collections import OrderedDict
from typing import BinaryIO, List, Optional, Tuple

import numpy as np

LIST_MAGIC = 0x112
NDARRAY_V1_MAGIC = 0xF993FAC8
NDARRAY_V2_MAGIC = 0xF993FAC9
NDARRAY_V3_MAGIC = 0xF993FACA
_VERSION_MAGIC = {
    1: NDARRAY_V1_MAGIC,
    2: NDARRAY_V2_MAGIC,
    3: NDARRAY_V3_MAGIC
}
# A legacy array starts with its ndim; anything larger is not a valid header.
_MAX_LEGACY_NDIM = 32
# mshadow type flags (include/mshadow/base.h).
DTYPE_FLAGS = {
    0: np.dtype('<f4'),
    1: np.dtype('<f8'),
    2: np.dtype('<f2'),
    3: np.dtype('u1'),
    4: np.dtype('<i4'),
    5: np.dtype('i1'),
    6: np.dtype('<i8'),
    7: np.dtype('?'),
    8: np.dtype('<i2'),
    9: np.dtype('<u2'),
    10: np.dtype('<u4'),
    11: np.dtype('<u8'),
}
_FLAG_OF_DTYPE = {dtype: flag for flag, dtype in DTYPE_FLAGS.items()}
_CPU_DEV_TYPE = 1


class _Reader:
    """Little-endian reads that fail loudly on truncated input."""

    def __init__(self, f: BinaryIO, name: str):
        self.f = f
        self.name = name
        try:
            self.size = os.fstat(f.fileno()).st_size
        except (AttributeError, OSError, io.UnsupportedOperation):
            self.size = None  # not a real file: no up-front size check

    def bytes(self, n: int) -> bytearray:
        if self.size is not None and self.f.tell() + n > self.size:
            raise ValueError(f'{self.name}: truncated MXNet params file '
                             f'(wanted {n} bytes at offset {self.f.tell()}, '
                             f'the file has {self.size})')
        buf = bytearray(n)
        got = self.f.readinto(buf)
        if got != n:
            raise ValueError(f'{self.name}: truncated MXNet params file '
                             f'(wanted {n} bytes at offset '
                             f'{self.f.tell() - got}, got {got})')
        return buf

    def values(self, fmt: str) -> tuple:
        return struct.unpack('<' + fmt,
                             self.bytes(struct.calcsize('<' + fmt)))

    def value(self, fmt: str) -> int:
        return self.values(fmt)[0]


def _read_ndarray(r: _Reader) -> Optional[np.ndarray]:
    """Read one NDArray; None for an empty (``is_none``) array."""
    magic = r.value('I')
    if magic in (NDARRAY_V2_MAGIC, NDARRAY_V3_MAGIC):
        stype = r.value('i')
        if stype != 0:
            raise ValueError(f'{r.name}: sparse NDArray (storage type '
                             f'{stype}) is not supported; expected dense (0)')
        ndim = r.value('i')
        shape = r.values(f'{max(ndim, 0)}q')
        if magic == NDARRAY_V2_MAGIC and ndim == 0:
            return None
        if ndim < 0 or any(d < 0 for d in shape):  # v3 unknown shape
            return None
    elif magic == NDARRAY_V1_MAGIC:
        ndim = r.value('i')
        shape = r.values(f'{max(ndim, 0)}q')
        if ndim <= 0:
            return None
    elif magic <= _MAX_LEGACY_NDIM:  # legacy: the magic is ndim
        shape = r.values(f'{magic}I')
        if magic == 0:
            return None
    else:
        raise ValueError(f'{r.name}: unknown NDArray magic {magic:#x}; '
                         'expected 0xf993fac8/9/a or a legacy ndim')
    r.values('ii')  # context (dev_type, dev_id): we always read to host
    flag = r.value('i')
    if flag not in DTYPE_FLAGS:
        raise ValueError(f'{r.name}: unsupported MXNet dtype flag {flag}; '
                         f'expected one of {sorted(DTYPE_FLAGS)}')
    dtype = DTYPE_FLAGS[flag]
    count = int(np.prod(shape, dtype=np.int64))
    data = np.frombuffer(r.bytes(count * dtype.itemsize), dtype=dtype)
    return data.reshape(shape).astype(dtype.newbyteorder('='), copy=False)


def read_ndarray_list(
    f: BinaryIO,
    name: str = '<stream>'
) -> Tuple[List[Optional[np.ndarray]], List[str]]:
    """Read an ``mx.nd.save`` stream.

    Args:
        f (BinaryIO): Stream opened in binary mode, at the list magic.
        name (str): Name used in error messages. Defaults to '<stream>'.

    Returns:
        tuple[list[ndarray | None], list[str]]: The arrays in file order
        (None for empty arrays) and their names (empty when the list was
        saved without names).
    """
    r = _Reader(f, name)
    magic, _reserved = r.values('QQ')
    if magic != LIST_MAGIC:
        raise ValueError(f'{name}: not an MXNet NDArray file (magic '
                         f'{magic:#x}, expected {LIST_MAGIC:#x})')
    arrays = [_read_ndarray(r) for _ in range(r.value('Q'))]
    names = [bytes(r.bytes(r.value('Q'))).decode('utf-8')
             for _ in range(r.value('Q'))]
    if names and len(names) != len(arrays):
        raise ValueError(f'{name}: {len(names)} names for {len(arrays)} '
                         'arrays')
    return arrays, names


def is_mxnet_params(path: str) -> bool:
    """Whether ``path`` starts with MXNet's NDArray-list magic."""
    with open(path, 'rb') as f:
        head = f.read(8)
    return len(head) == 8 and struct.unpack('<Q', head)[0] == LIST_MAGIC


def load_mxnet_params(path: str) -> 'OrderedDict[str, np.ndarray]':
    """Load a named MXNet ``.params`` file as numpy arrays.

    Args:
        path (str): File written by ``mx.nd.save(path, dict)`` or
            ``Module.save_params`` (names like ``arg:res2a_branch1_weight``,
            ``aux:bn7_moving_var``).

    Returns:
        OrderedDict[str, ndarray]: name -> array, in file order, native byte
        order, writable. Empty arrays are skipped.
    """
    with open(path, 'rb') as f:
        arrays, names = read_ndarray_list(f, path)
    if not names and arrays:
        raise ValueError(f'{path}: the MXNet file holds {len(arrays)} '
                         'unnamed arrays; expected a named dict')
    return OrderedDict((k, v) for k, v in zip(names, arrays)
                       if v is not None)
