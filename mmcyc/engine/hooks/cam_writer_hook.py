# Copyright (c) mmcyc contributors. All rights reserved.
"""Write the CAMs a val/test loop computes, one file per image."""
from typing import Sequence

from mmseg.registry import HOOKS

from mmcyc.utils.cam_io import CAMStore
from .per_image_writer_hook import PerImageWriterHook


@HOOKS.register_module()
class CAMWriterHook(PerImageWriterHook):
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

    what = 'CAMs'

    def __init__(self, out_dir: str,
                 loops: Sequence[str] = ('test', )) -> None:
        super().__init__(out_dir, loops)
        self.store = CAMStore(out_dir)

    def skipped_note(self) -> str:
        return f' ({self.num_skipped} read back)'

    def write(self, sample) -> bool:
        """Write one sample's CAM unless it was read back; return whether.

        Raises:
            KeyError: If the sample has no ``img_path``, ``pred_cam`` or
                ``pred_cam_labels``.
        """
        if 'written_cam' in sample:
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
        return True
