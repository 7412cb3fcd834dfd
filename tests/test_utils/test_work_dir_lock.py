"""One main job per work folder: mmcyc.utils.work_dir_lock."""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest

from mmcyc.utils.work_dir_lock import (HELD_VAR, LOCK_NAME, WorkDirBusyError,
                                       lock_work_dir, unlock_work_dir,
                                       work_dir_lock)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HOLDER = ('import sys, time\n'
          'from mmcyc.utils.work_dir_lock import lock_work_dir\n'
          'handle = lock_work_dir(sys.argv[1])\n'
          'print("locked", flush=True)\n'
          'time.sleep(600)\n')


@pytest.fixture(autouse=True)
def no_inherited_lock(monkeypatch):
    monkeypatch.delenv(HELD_VAR, raising=False)


def test_second_taker_is_refused_until_the_first_releases(tmp_path):
    first = lock_work_dir(str(tmp_path))
    assert first is not None and os.environ[HELD_VAR] == str(tmp_path)
    os.environ.pop(HELD_VAR)  # as another process would see it
    with pytest.raises(WorkDirBusyError) as error:
        lock_work_dir(str(tmp_path))
    message = str(error.value)
    assert str(tmp_path) in message and f'process {os.getpid()}' in message
    assert osp.join(str(tmp_path), LOCK_NAME) in message
    unlock_work_dir(first)
    with work_dir_lock(str(tmp_path)):  # free again
        assert os.environ[HELD_VAR] == str(tmp_path)
    assert HELD_VAR not in os.environ


def test_children_of_the_holder_do_not_take_it_again(tmp_path):
    with work_dir_lock(str(tmp_path)):
        # a lane: a child process of the holder with its environment
        assert lock_work_dir(str(tmp_path)) is None
        # another folder is not covered by the holder's lock
        other = tmp_path / 'other'
        other.mkdir()
        os.environ[HELD_VAR] = str(tmp_path)
        handle = lock_work_dir(str(other))
        assert handle is not None
        unlock_work_dir(handle)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, '-c', HOLDER, str(tmp_path)], cwd=REPO,
        stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=REPO))
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with pytest.raises(WorkDirBusyError, match=f'process {holder.pid}'):
            lock_work_dir(str(tmp_path))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    handle = lock_work_dir(str(tmp_path))
    assert handle is not None
    unlock_work_dir(handle)


def test_main_job_refuses_a_work_folder_in_use(tmp_path):
    """tools/run_pipeline.py exits with the folder named and runs no stage
    while another main job holds the folder."""
    work, data = tmp_path / 'work', tmp_path / 'data'
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != HELD_VAR}
    with work_dir_lock(str(work)):
        proc = subprocess.run(
            [sys.executable, 'tools/run_pipeline.py', '--config',
             'tests/data/pipeline_tiny.py', '--work-dir', str(work),
             '--data-root', str(data)],
            capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode != 0
    assert f'{work} is in use by another main job' in proc.stderr
    assert not data.exists()
    assert sorted(p.name for p in work.iterdir()) == [LOCK_NAME]
