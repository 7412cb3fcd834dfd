# Copyright (c) mmcyc contributors. All rights reserved.
"""Atomic file writes: a temporary file beside the target, then a rename."""
import os
import os.path as osp
import tempfile
from contextlib import contextmanager
from typing import IO, Iterator


@contextmanager
def atomic_open(path: str, mode: str = 'wb') -> Iterator[IO]:
    """Open a file for writing that appears at ``path`` only when complete.

    The data goes to a uniquely named temporary file in ``path``'s folder
    (created if needed), which :func:`os.replace` moves over ``path`` when
    the ``with`` block ends without an exception; on an exception it is
    removed and ``path`` keeps its old content. A reader therefore never sees
    a partial file, and concurrent writers of the same name (e.g. the padded
    tail of a distributed sampler) leave one whole file. The file gets the
    permissions a plain ``open`` would give it (0666 less the umask), not
    the temporary file's private 0600.

    Args:
        path (str): The file to write.
        mode (str): ``'wb'`` (default) or ``'w'``.

    Yields:
        The open temporary file.
    """
    if mode not in ('wb', 'w'):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    folder, name = osp.split(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def current_umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
