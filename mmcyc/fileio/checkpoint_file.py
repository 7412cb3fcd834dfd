# Copyright (c) mmcyc contributors. All rights reserved.
"""Tell a whole checkpoint file from a truncated one without loading it."""
import os
import os.path as osp
import re
import zipfile
from typing import Optional

from mmcyc.utils.atomic_io import atomic_open


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (zip format).

    ``torch.save`` writes a zip archive whose central directory comes last,
    so a file cut short by a kill during the write has none: such a file
    (or a missing, empty or non-zip one) is not complete. Every member's
    CRC is checked too, which reads the file once (a few MB for the
    synthetic checkpoints) but deserialises nothing.

    Args:
        path (str): The checkpoint file.

    Returns:
        bool: True if the file exists and is a readable zip archive whose
        members all match their CRCs.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


CHECKPOINT_NAME = re.compile(r'(epoch|iter)_(\d+)\.pth')


def repair_resume_point(work_dir: str) -> Optional[str]:
    """Point ``work_dir/last_checkpoint`` at the newest whole checkpoint.

    mmengine's ``resume=True`` reads ``last_checkpoint`` (the file the
    ``CheckpointHook`` names after each save) and loads that file. A
    checkpoint cut short by a kill during the write (possible with mmengine's
    plain local backend; mmcyc's configs write atomically) made every resume
    fail with ``PytorchStreamReader failed reading zip archive``. Here a
    named file that is not whole is removed, and ``last_checkpoint`` is
    rewritten (atomically) to name the newest whole ``epoch_N.pth`` /
    ``iter_N.pth`` left in ``work_dir``, or removed when there is none (the
    training then starts afresh).

    Args:
        work_dir (str): The training's work folder.

    Returns:
        str | None: The checkpoint a resume will load, or None.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        named = f.read().strip()
    if named and is_complete_checkpoint(named):
        return named
    if named and osp.isfile(named):
        os.remove(named)  # cut short: it would fail every resume
    candidates = []
    for name in os.listdir(work_dir):
        match = CHECKPOINT_NAME.fullmatch(name)
        path = osp.join(work_dir, name)
        if match and is_complete_checkpoint(path):
            candidates.append((int(match.group(2)), path))
    if not candidates:
        os.remove(pointer)
        return None
    newest = max(candidates)[1]
    with atomic_open(pointer, 'w') as f:
        f.write(newest)
    return newest
