# Copyright (c) mmcyc contributors. All rights reserved.
"""The loop plumbing shared by the hooks that write one file per image."""
from typing import Sequence

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log

LOOPS = ('val', 'test')


class PerImageWriterHook(Hook):
    """Calls :meth:`write` on each output sample of the chosen loops.

    Subclasses implement ``write(sample) -> bool`` (whether a file was
    written) and name what they write in ``what``; this base validates the
    folder and loops, counts what each epoch wrote and logs it per rank.

    Call order::

        before_{val,test}_epoch: reset the counts
        after_{val,test}_iter:   write(sample) for each output sample
        after_{val,test}_epoch:  log how many files this rank wrote

    Args:
        out_dir (str): Folder of the files (made if absent).
        loops (Sequence[str]): Loops that write, a subset of
            ``('val', 'test')``.
    """

    priority = 'NORMAL'
    what = 'files'  # what the files are, for the log line

    def __init__(self, out_dir: str, loops: Sequence[str] = LOOPS) -> None:
        if not isinstance(out_dir, str) or not out_dir:
            raise ValueError(f'out_dir must be a non-empty folder path, got '
                             f'{out_dir!r}')
        loops = (loops, ) if isinstance(loops, str) else tuple(loops)
        if not loops or any(loop not in LOOPS for loop in loops):
            raise ValueError(f'loops must be a non-empty subset of {LOOPS}, '
                             f'got {loops!r}')
        self.out_dir = out_dir
        self.loops = loops
        self.num_written = self.num_skipped = 0

    def write(self, sample) -> bool:
        raise NotImplementedError

    def _before_epoch(self, runner, mode: str = 'train') -> None:
        if mode in self.loops:
            self.num_written = self.num_skipped = 0

    def _after_iter(self,
                    runner,
                    batch_idx: int,
                    data_batch=None,
                    outputs=None,
                    mode: str = 'train') -> None:
        if mode not in self.loops:
            return
        for sample in outputs or ():
            if self.write(sample):
                self.num_written += 1
            else:
                self.num_skipped += 1

    def _after_epoch(self, runner, mode: str = 'train') -> None:
        if mode in self.loops:
            print_log(
                f'{type(self).__name__}: rank {get_rank()} wrote '
                f'{self.num_written} {self.what} to {self.out_dir}' +
                self.skipped_note(), logger='current')

    def skipped_note(self) -> str:
        """What the log line says of the samples not written."""
        return ''
