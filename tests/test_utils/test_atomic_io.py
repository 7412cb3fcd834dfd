"""atomic_open: the target appears whole or keeps its old content."""
import os
import stat

import pytest

from mmcyc.utils import atomic_open


def test_writes_text_and_bytes_and_creates_the_folder(tmp_path):
    path = tmp_path / 'new' / 'a.json'
    with atomic_open(str(path), 'w') as f:
        f.write('{"x": 1}')
    assert path.read_text() == '{"x": 1}'
    with atomic_open(str(path)) as f:
        f.write(b'\x00\x01')
    assert path.read_bytes() == b'\x00\x01'
    assert os.listdir(path.parent) == ['a.json']  # no temporary file left


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / 'a.bin'
    path.write_bytes(b'old')
    with pytest.raises(OSError, match='disk full'):
        with atomic_open(str(path)) as f:
            f.write(b'partial')
            raise OSError('disk full')
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['a.bin']


def test_bad_mode():
    with pytest.raises(ValueError, match='mode'):
        with atomic_open('x', 'a'):
            pass


@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002])
def test_permissions_follow_the_umask(tmp_path, umask):
    """Like a plain open: 0666 less the umask (mkstemp alone gives 0600)."""
    old = os.umask(umask)
    try:
        with atomic_open(str(tmp_path / 'a.json'), 'w') as f:
            f.write('{}')
        with open(tmp_path / 'b.json', 'w') as f:
            f.write('{}')
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / 'a.json').st_mode)
    assert mode == 0o666 & ~umask
    assert mode == stat.S_IMODE(os.stat(tmp_path / 'b.json').st_mode)
