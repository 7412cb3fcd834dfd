import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def voc12_meta():
    """AffinityNet's public VOC 2012 metadata (cls_labels.npy, split lists).

    A copy ships in ``tests/data/voc12`` (AffinityNet's public files, 3 MB);
    ``$MMCYC_VOC12_META`` points elsewhere.
    """
    path = os.environ.get('MMCYC_VOC12_META',
                          osp.join(REPO, 'tests', 'data', 'voc12'))
    if not osp.isfile(osp.join(path, 'cls_labels.npy')):
        pytest.fail(f'VOC 2012 metadata not found in {path}: expected '
                    'cls_labels.npy and train_aug.txt there (set '
                    'MMCYC_VOC12_META)')
    return path


@pytest.fixture(scope='session')
def tiny_synthvoc(tmp_path_factory):
    """A tiny synthetic VOC-layout dataset shared by the tool tests."""
    from mmcyc.datasets.synthvoc import make_synthvoc
    root = str(tmp_path_factory.mktemp('synthvoc'))
    make_synthvoc(root, num_train=24, num_val=8, size=64, seed=3)
    return root


def _run_tool(*args, env=None, timeout=600):
    """Run a command from the repository root; return the completed process."""
    full_env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1',
                    **(env or {}))
    proc = subprocess.run(
        list(args), cwd=REPO, env=full_env, capture_output=True, text=True,
        timeout=timeout)
    assert proc.returncode == 0, (
        f'{" ".join(args)} failed ({proc.returncode}):\n'
        f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}')
    return proc


@pytest.fixture(scope='session')
def run_tool():
    """``run_tool(*cmd, env=None)``: run a tool, failing with its output."""
    return _run_tool


@pytest.fixture(scope='session')
def python():
    return sys.executable


@pytest.fixture
def free_port():
    """A TCP port free now, for a torchrun rendezvous (``PORT=...``)."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])
