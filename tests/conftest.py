import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the files that take longest (whole pipelines, trainings in child
# processes), run first: with ``-n 2 --dist loadfile`` (README) the two
# workers start on them while the short files remain to even out the end
SLOW_FILES_FIRST = ('test_tools/test_run_pipeline.py',
                    'test_tools/test_ablate_dcfs.py',
                    'test_tools/test_train_test.py',
                    'test_tools/test_exact_resume.py')


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = osp.relpath(str(item.path), osp.join(REPO, 'tests'))
        return SLOW_FILES_FIRST.index(path) if path in SLOW_FILES_FIRST \
            else len(SLOW_FILES_FIRST)

    items.sort(key=rank)  # stable: the rest in collection order


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


@pytest.fixture
def no_file_access(monkeypatch):
    """Make ``torch.load``, ``open`` and ``Config.fromfile`` raise.

    For checks that building a model reads no file (weights arrive through
    ``init_weights()`` or ``load_from``).
    """
    import builtins
    import io

    import torch
    from mmengine.config import Config

    def refuse(*args, **kwargs):
        raise AssertionError(f'a file was read: {args[:1]}')

    monkeypatch.setattr(torch, 'load', refuse)
    monkeypatch.setattr(builtins, 'open', refuse)
    monkeypatch.setattr(io, 'open', refuse)
    monkeypatch.setattr(Config, 'fromfile', refuse)


@pytest.fixture(scope='session')
def tiny_synthvoc(tmp_path_factory):
    """A tiny synthetic VOC-layout dataset shared by the tool tests."""
    from mmcyc.datasets.synthvoc import make_synthvoc
    root = str(tmp_path_factory.mktemp('synthvoc'))
    make_synthvoc(root, num_train=24, num_val=8, size=64, seed=3)
    return root


@pytest.fixture(scope='session')
def tiny_stage_inputs(tmp_path_factory, tiny_synthvoc):
    """Untrained tiny stage-2 inputs on ``tiny_synthvoc`` (read-only).

    ``cyc``: a CyCSNet checkpoint of ``tests/data/cyc_tiny_synthvoc.py``
    (seed 0); ``cls``: a stage-1 classifier checkpoint (seed 1); ``cam_dir``:
    CAMs of every train_aug image made from its mask (0.6 on the class plus
    uniform noise up to 0.3), so every image has references above beta1.
    """
    import numpy as np
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from PIL import Image

    from mmcyc.datasets.cls_labels import load_cls_labels
    from mmcyc.datasets.voc_image_label import read_image_names
    from mmcyc.utils import save_cam
    work = tmp_path_factory.mktemp('tiny_stage_inputs')
    init_default_scope('mmseg')
    import mmcyc  # noqa: F401
    # building reads no file: the config's classifier checkpoint is not read
    model_cfg = Config.fromfile('tests/data/cyc_tiny_synthvoc.py').model
    torch.manual_seed(0)
    cyc = str(work / 'cyc.pth')
    torch.save({'state_dict': MODELS.build(model_cfg).state_dict(),
                'meta': {}}, cyc)
    torch.manual_seed(1)
    cls = str(work / 'cls.pth')
    torch.save({'state_dict': MODELS.build(model_cfg).cam_classifier
                .state_dict(), 'meta': {}}, cls)
    labels = load_cls_labels(osp.join(tiny_synthvoc, 'cls_labels.npy'))
    cam_dir = work / 'cams'
    rng = np.random.default_rng(0)
    for name in read_image_names(
            osp.join(tiny_synthvoc, 'ImageSets', 'Segmentation',
                     'train_aug.txt')):
        mask = np.asarray(Image.open(osp.join(
            tiny_synthvoc, 'SegmentationClassAug', name + '.png')))
        classes = np.flatnonzero(labels[name])
        cams = np.stack([(mask == c + 1) * 0.6 + rng.random(mask.shape) * 0.3
                         for c in classes])
        save_cam(str(cam_dir / f'{name}.npz'), cams, classes)
    return dict(work=work, cyc=cyc, cls=cls, cam_dir=str(cam_dir))


def _run_tool(*args, env=None, timeout=1800):
    """Run a command from the repository root; return the completed process.

    ``timeout`` guards against a hang; it is no time limit: the tiny main
    job of ``test_run_pipeline.py`` ran past 600 s on machine E while a
    training shared its two cores (2026-12-02).
    """
    full_env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    full_env.update(env or {})
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
