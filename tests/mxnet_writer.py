"""Write MXNet ``.params`` files as ``mx.nd.save`` does: test data for the
reader in ``mmcyc.converters.mxnet_params`` (the package only reads them)."""
import struct
from typing import BinaryIO, Dict, Mapping

import numpy as np

from mmcyc.converters.mxnet_params import (_CPU_DEV_TYPE, _FLAG_OF_DTYPE,
                                           _VERSION_MAGIC, LIST_MAGIC)


def _write_ndarray(f: BinaryIO, array: np.ndarray, version: int) -> None:
    dtype = array.dtype.newbyteorder('<') if array.dtype.itemsize > 1 \
        else array.dtype
    if dtype not in _FLAG_OF_DTYPE:
        raise ValueError(f'cannot save dtype {array.dtype} to MXNet format; '
                         f'supported: {sorted(map(str, _FLAG_OF_DTYPE))}')
    if version == 0:
        if array.ndim == 0:
            raise ValueError('the legacy format cannot hold a scalar')
        f.write(struct.pack(f'<I{array.ndim}I', array.ndim, *array.shape))
    else:
        if array.ndim == 0 and version != 3:
            raise ValueError(f'NDArray version {version} cannot hold a '
                             'scalar; use version 3')
        f.write(struct.pack('<I', _VERSION_MAGIC[version]))
        if version >= 2:
            f.write(struct.pack('<i', 0))  # dense storage
        f.write(struct.pack(f'<i{array.ndim}q', array.ndim, *array.shape))
    f.write(struct.pack('<iii', _CPU_DEV_TYPE, 0, _FLAG_OF_DTYPE[dtype]))
    f.write(np.ascontiguousarray(array, dtype=dtype).tobytes())


def save_mxnet_params(path: str,
                      arrays: Mapping[str, np.ndarray],
                      version: int = 2) -> None:
    """Write ``arrays`` as ``mx.nd.save(path, arrays)`` would.

    Args:
        path (str): Output file.
        arrays (Mapping[str, ndarray]): name -> array (torch tensors are
            converted with ``numpy()``).
        version (int): NDArray record version: 0 (legacy, uint32 shape),
            1, 2 (what MXNet 1.x writes) or 3 (numpy shape semantics).
            Defaults to 2.
    """
    if version not in (0, 1, 2, 3):
        raise ValueError(f'version must be 0, 1, 2 or 3, got {version}')
    items: Dict[str, np.ndarray] = {
        k: np.asarray(v.numpy() if hasattr(v, 'numpy') else v)
        for k, v in arrays.items()
    }
    with open(path, 'wb') as f:
        f.write(struct.pack('<QQQ', LIST_MAGIC, 0, len(items)))
        for array in items.values():
            _write_ndarray(f, array, version)
        f.write(struct.pack('<Q', len(items)))
        for name in items:
            encoded = name.encode('utf-8')
            f.write(struct.pack('<Q', len(encoded)) + encoded)
