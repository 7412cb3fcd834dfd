# Copyright (c) mmcyc contributors. All rights reserved.
"""A local file backend whose writes are atomic, for checkpoints."""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from mmcyc.utils.atomic_io import atomic_open


class AtomicLocalBackend(LocalBackend):
    """mmengine's :class:`LocalBackend`, writing through a rename.

    ``put`` and ``put_text`` write a temporary file beside the target and
    :func:`os.replace` it over the target once complete
    (:func:`mmcyc.utils.atomic_open`), so a file is never visible
    half-written. mmengine's ``save_checkpoint`` writes the whole serialised
    checkpoint with one ``put``: with the plain backend a process killed
    while writing ``epoch_N.pth`` left a truncated file that a later run
    took for a finished one. Everything else (reads, listing, removal) is
    :class:`LocalBackend`'s.

    Registered as ``'atomic_local'``; every mmcyc training config selects it
    for its checkpoints::

        default_hooks = dict(checkpoint=dict(
            type='CheckpointHook', backend_args=dict(backend='atomic_local')))

    (``CheckpointHook`` then writes ``epoch_N.pth`` / ``iter_N.pth`` and
    ``last_checkpoint`` through it.)
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically (folders created)."""
        with atomic_open(str(filepath), 'wb') as f:
            f.write(obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically."""
        self.put(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)
