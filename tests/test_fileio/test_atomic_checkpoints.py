"""Checkpoints are never visible half-written, and a cut-short one from an
older run is neither taken as a finished stage nor resumed from."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import save_checkpoint

import mmcyc.utils.atomic_io as atomic_io
from mmcyc.apis.pipeline_stages import Pipeline
from mmcyc.fileio import (AtomicLocalBackend, is_complete_checkpoint,
                          repair_resume_point)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ATOMIC = dict(backend='atomic_local')


def whole_checkpoint(path, value=1.0):
    torch.save({'state_dict': {'w': torch.full((64, 64), value)}}, path)
    return str(path)


def cut_short(path, value=2.0):
    whole_checkpoint(path, value)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return str(path)


def test_backend_is_registered_and_writes(tmp_path):
    backend = get_file_backend(str(tmp_path), backend_args=ATOMIC)
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'abc', str(tmp_path / 'sub' / 'f.bin'))
    backend.put_text('epoch_3.pth', str(tmp_path / 'last_checkpoint'))
    assert (tmp_path / 'sub' / 'f.bin').read_bytes() == b'abc'
    assert (tmp_path / 'last_checkpoint').read_text() == 'epoch_3.pth'


def test_killed_save_leaves_old_file_and_no_partial(tmp_path, monkeypatch):
    """mmengine's save_checkpoint through the backend, interrupted after the
    bytes were written but before the rename: the target keeps its old whole
    content and no temporary file is left."""
    target = tmp_path / 'epoch_2.pth'
    whole_checkpoint(target, 1.0)

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_io.os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(target),
                        backend_args=ATOMIC)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ['epoch_2.pth']
    loaded = torch.load(target, weights_only=False)['state_dict']['w']
    assert loaded.shape == (64, 64) and (loaded == 1).all()
    save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(target),
                    backend_args=ATOMIC)
    assert torch.load(target, weights_only=False)['state_dict']['w'].shape \
        == (3, )


def test_is_complete_checkpoint(tmp_path):
    assert is_complete_checkpoint(whole_checkpoint(tmp_path / 'a.pth'))
    assert not is_complete_checkpoint(cut_short(tmp_path / 'b.pth'))
    (tmp_path / 'empty.pth').write_bytes(b'')
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    for name in ('empty.pth', 'text.pth', 'missing.pth'):
        assert not is_complete_checkpoint(str(tmp_path / name))


def test_repair_resume_point(tmp_path):
    # no pointer: nothing to resume
    assert repair_resume_point(str(tmp_path)) is None
    first = whole_checkpoint(tmp_path / 'epoch_1.pth')
    second = whole_checkpoint(tmp_path / 'epoch_2.pth')
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text(second)
    assert repair_resume_point(str(tmp_path)) == second  # whole: kept
    # the newest is cut short: removed, the pointer names epoch_2 (the
    # newest whole one), not epoch_1
    third = cut_short(tmp_path / 'epoch_3.pth')
    pointer.write_text(third)
    assert repair_resume_point(str(tmp_path)) == second
    assert pointer.read_text() == second and not osp.exists(third)
    # no whole checkpoint left: the pointer goes, training starts afresh
    cut_short(first)
    cut_short(second)
    pointer.write_text(second)
    assert repair_resume_point(str(tmp_path)) is None
    assert not pointer.exists()


def test_pipeline_retrains_a_cut_short_final_checkpoint(tmp_path):
    """A truncated final checkpoint (a kill while mmengine wrote it, before
    atomic writes) is not a finished stage: the pipeline removes it and
    trains, resuming from the newest whole checkpoint."""
    cfg = Config.fromfile(osp.join(REPO, 'tests', 'data', 'pipeline_tiny.py'))
    logger = MMLogger.get_instance('test_cut_short_ckpt')
    pipeline = Pipeline(cfg, str(tmp_path), str(tmp_path / 'data'),
                             logger)
    work = tmp_path / 'cam'
    work.mkdir()
    final = pipeline.final_checkpoint('cam')
    assert osp.dirname(final) == str(work)
    whole = whole_checkpoint(work / 'epoch_1.pth')
    cut_short(final)
    (work / 'last_checkpoint').write_text(final)
    cmds = pipeline.train_cmds('cam', False)
    assert len(cmds) == 1 and '--resume' in cmds[0]
    assert not osp.exists(final)
    assert (work / 'last_checkpoint').read_text() == whole
    # a whole final checkpoint is a finished stage
    whole_checkpoint(final)
    assert pipeline.train_cmds('cam', False) == []
