# Copyright (c) mmcyc contributors. All rights reserved.
"""Write the CAMs a val/test loop computes, one file per image."""
from typing import Sequence

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from mmcyc.utils.cam_io import CAMStore

LOOPS = ('val', 'test')


@HOOKS.register_module()
class CAMWriterHook(Hook):
    """Saves each sample's ``pred_cam`` as ``<image stem>.npz``.

    Stage 1b (and any CAM source: SSENet, LPCAM) ends with ``runner.test()``
    of a ``CAMClassifier``, whose samples carry the normalised CAM
    (``pred_cam``, PixelData (C, H, W)) and the classes it was made for
    (``pred_cam_labels``, (C, ) multi-hot); this hook writes the labelled
    channels in the CAM file format of :mod:`mmcyc.utils.cam_io`,
    atomically. A sample whose CAM was read back from the folder
    (``written_cam``, from ``LoadCAMFromFile(..., key='written_cam',
    skip_missing=True)`` in the test pipeline: ``tools/test.py --cam-dir``
    adds both) is not written again, so an interrupted run resumes.

    Call order::

        before_{val,test}_epoch: reset the count
        after_{val,test}_iter:   each output sample without written_cam:
                                 pred_cam.data (C, H, W)[labelled]
                                 -> out_dir/<img_path stem>.npz
        after_{val,test}_epoch:  log how many CAMs this rank wrote

    Args:
        out_dir (str): Folder of the CAM files (made if absent).
        loops (Sequence[str]): Loops that write, a subset of
            ``('val', 'test')``. Defaults to ``('test', )``.
    """

    priority = 'NORMAL'

    def __init__(self, out_dir: str,
                 loops: Sequence[str] = ('test', )) -> None:
        if not isinstance(out_dir, str) or not out_dir:
            raise ValueError(f'out_dir must be a non-empty folder path, got '
                             f'{out_dir!r}')
        loops = (loops, ) if isinstance(loops, str) else tuple(loops)
        if not loops or any(loop not in LOOPS for loop in loops):
            raise ValueError(f'loops must be a non-empty subset of {LOOPS}, '
                             f'got {loops!r}')
        self.out_dir = out_dir
        self.loops = loops
        self.store = CAMStore(out_dir)
        self.num_written = self.num_read = 0

    def _before_epoch(self, runner, mode: str = 'train') -> None:
        if mode in self.loops:
            self.num_written = self.num_read = 0

    def _after_iter(self,
                    runner,
                    batch_idx: int,
                    data_batch=None,
                    outputs=None,
                    mode: str = 'train') -> None:
        if mode not in self.loops:
            return
        for sample in outputs or ():
            self.write(sample)

    def _after_epoch(self, runner, mode: str = 'train') -> None:
        if mode in self.loops:
            print_log(
                f'CAMWriterHook: rank {get_rank()} wrote {self.num_written} '
                f'CAMs to {self.out_dir} ({self.num_read} read back)',
                logger='current')

    def write(self, sample) -> bool:
        """Write one sample's CAM unless it was read back; return whether.

        Raises:
            KeyError: If the sample has no ``img_path``, ``pred_cam`` or
                ``pred_cam_labels``.
        """
        if 'written_cam' in sample:
            self.num_read += 1
            return False
        img_path = sample.metainfo.get('img_path')
        if not img_path:
            raise KeyError('CAMWriterHook: a data sample has no '
                           "metainfo['img_path'] to name its CAM after")
        for key in ('pred_cam', 'pred_cam_labels'):
            if key not in sample:
                raise KeyError(
                    f'CAMWriterHook: the sample of {img_path} has no {key!r} '
                    f'(a CAMClassifier prediction); its fields are '
                    f'{sorted(sample.keys())}')
        self.store.save(img_path, sample.pred_cam.data.float(),
                        sample.pred_cam_labels)  # (C, H, W), (C, )
        self.num_written += 1
        return True
