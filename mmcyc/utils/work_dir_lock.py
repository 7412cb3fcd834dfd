# Copyright (c) mmcyc contributors. All rights reserved.
"""One main job per work folder: an advisory lock on ``WORK/pipeline.lock``.

Two main jobs on one work folder would train into the same checkpoints and
write the same manifests (one resuming what the other is writing), so the
second is refused at once. The lock is ``fcntl.flock`` on an open file: the
system drops it when the holder exits, killed or not, so no stale lock can
outlive a crash. The holder's child pipelines (the lanes) inherit it through
the environment variable :data:`HELD_VAR` instead of taking it again.
"""
import fcntl
import os
import os.path as osp
from contextlib import contextmanager
from typing import IO, Iterator, Optional

LOCK_NAME = 'pipeline.lock'
# the work folder whose lock a parent main job holds for its children
HELD_VAR = 'MMCYC_PIPELINE_LOCK_HELD'


class WorkDirBusyError(RuntimeError):
    """Another main job holds the work folder."""


def lock_work_dir(work_dir: str) -> Optional[IO]:
    """Take the work folder's lock for this process and its children.

    Args:
        work_dir (str): The main job's work folder (created by the caller).

    Returns:
        IO | None: The open lock file (keep it open: closing it releases
        the lock), or None when a parent main job already holds this folder
        (this process is one of its lanes).

    Raises:
        WorkDirBusyError: Another process holds the folder's lock.
    """
    work_dir = osp.abspath(work_dir)
    if os.environ.get(HELD_VAR) == work_dir:
        return None
    path = osp.join(work_dir, LOCK_NAME)
    handle = open(path, 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or 'unknown'
        handle.close()
        raise WorkDirBusyError(
            f'{work_dir} is in use by another main job (process {holder}, '
            f'lock {path}): wait for it to end, or give another --work-dir')
    handle.seek(0)
    handle.truncate()
    handle.write(f'{os.getpid()}\n')
    handle.flush()
    os.environ[HELD_VAR] = work_dir
    return handle


def unlock_work_dir(handle: Optional[IO]) -> None:
    """Release a lock taken by :func:`lock_work_dir` (None: nothing)."""
    if handle is None:
        return
    os.environ.pop(HELD_VAR, None)
    handle.close()


@contextmanager
def work_dir_lock(work_dir: str) -> Iterator[None]:
    """``with work_dir_lock(work):`` hold the folder's lock in the block."""
    handle = lock_work_dir(work_dir)
    try:
        yield
    finally:
        unlock_work_dir(handle)
