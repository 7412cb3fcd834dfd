"""Fig. 3: the similarity-map drawing and tools/analysis_tools/
similarity_maps.py on the tiny synthetic dataset (untrained tiny CyCSNet: the
plumbing does not depend on training)."""
import re
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmcyc.datasets.cls_labels import load_cls_labels
from mmcyc.models.utils.cam_refinement import similarity_maps
from mmcyc.utils import save_cam
from mmcyc.visualization.similarity_maps import draw_similarity_maps

CONFIG = 'tests/data/cyc_tiny_synthvoc.py'
TOOL = 'tools/analysis_tools/similarity_maps.py'
SOURCE, TARGETS = 'synth_000000', ('synth_000001', 'synth_000002')


def luminance(image):
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114])


def peak_map(size, peak):
    ys, xs = np.mgrid[:size[0], :size[1]]
    return np.exp(-((ys - peak[0])**2 + (xs - peak[1])**2) / 20.0)


def test_draw_shape_and_dots():
    source = np.full((48, 32, 3), 100, np.uint8)
    targets = [np.full((40, 40, 3), 100, np.uint8),
               np.full((24, 36, 3), 100, np.uint8)]
    points = [(0, 0), (47.5, 31.9)]
    maps = [np.random.rand(2, *t.shape[:2]) for t in targets]
    grid = draw_similarity_maps(source, points, targets, maps, margin=3)
    cell = 48  # the longest side of all images
    assert grid.dtype == np.uint8
    assert grid.shape == (3 + 2 * (cell + 3), 3 + 3 * (cell + 3), 3)
    reds = (grid[..., 0] > 200) & (grid[..., 1] < 60) & (grid[..., 2] < 60)
    top = reds[3:3 + cell, 3:3 + cell]  # row 0, source: dot near (0, 8)
    assert top.any() and np.argwhere(top).mean(0) == pytest.approx(
        (1, 8), abs=1.5)
    titled = draw_similarity_maps(source, points, targets, maps,
                                  titles=['src', 'a', 'b'], margin=3)
    assert titled.shape[1:] == grid.shape[1:]
    assert titled.shape[0] > grid.shape[0]


def test_heat_brightest_at_the_peak():
    size, peaks = (40, 40), [(7, 30), (25, 12)]
    gray = np.full(size + (3, ), 128, np.uint8)
    maps = [np.stack([peak_map(size, p) for p in peaks]) * 1e-3]  # W^f-like
    grid = draw_similarity_maps(gray, [(5, 5), (30, 30)], [gray], maps,
                                margin=0)
    assert grid.shape == (80, 80, 3)
    for row, peak in enumerate(peaks):
        heat = luminance(grid[row * 40:(row + 1) * 40, 40:80])
        assert np.unravel_index(heat.argmax(), size) == peak


def test_draw_rejects_bad_input():
    image = np.zeros((8, 8, 3), np.uint8)
    maps = [np.zeros((1, 8, 8))]
    with pytest.raises(ValueError, match='outside the source'):
        draw_similarity_maps(image, [(8, 0)], [image], maps)
    with pytest.raises(ValueError, match=r'maps\[0\] must have shape'):
        draw_similarity_maps(image, [(1, 1)], [image], [np.zeros((1, 4, 4))])
    with pytest.raises(ValueError, match='RGB uint8'):
        draw_similarity_maps(image[..., 0], [(1, 1)], [image], maps)


@pytest.fixture(scope='module')
def tool():
    from mmcyc.apis import similarity_figure
    return similarity_figure


def test_tool_errors(tool, tiny_synthvoc):
    dataset_cfg = dict(data_root=tiny_synthvoc)
    assert tool.resolve_image(dataset_cfg, SOURCE).endswith(
        osp.join('JPEGImages', SOURCE + '.jpg'))
    with pytest.raises(FileNotFoundError,
                       match=f'nope.*{re.escape(tiny_synthvoc)}.*nope.jpg'):
        tool.resolve_image(dataset_cfg, 'nope')
    assert tool.point_cells([(0, 0), (63.9, 8)], (64, 64),
                            (8, 8)) == [(0, 0), (7, 1)]
    with pytest.raises(ValueError, match=r'outside .*\(H=64, W=64\)'):
        tool.point_cells([(64, 3)], (64, 64), (8, 8))


@pytest.fixture(scope='module')
def tiny_cyc(tmp_path_factory, tiny_synthvoc):
    """An untrained tiny CyCSNet checkpoint and the source's stage-1 CAM."""
    work = tmp_path_factory.mktemp('similarity')
    init_default_scope('mmseg')
    import mmcyc  # noqa: F401
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    checkpoint = str(work / 'cyc.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    classes = np.flatnonzero(
        load_cls_labels(osp.join(tiny_synthvoc, 'cls_labels.npy'))[SOURCE])
    cam = np.zeros((len(classes), 64, 64), np.float32)
    cam[0, 40:48, 16:24] = 1.0  # the CAM's maximum: feature cell (5, 2)
    cam[-1, 8:16, 48:56] = 0.8  # second: cell (1, 6)
    save_cam(str(work / 'cams' / f'{SOURCE}.npz'), cam, classes)
    return work, model, cfg, checkpoint, str(work / 'cams')


def test_tool_top_k(tiny_cyc, tiny_synthvoc, run_tool, python):
    work, model, cfg, checkpoint, cam_dir = tiny_cyc
    out = str(work / 'out')
    proc = run_tool(python, TOOL, CONFIG, checkpoint, '--source', SOURCE,
                    '--top-k', '2', '--cam-dir', cam_dir, '--targets',
                    *TARGETS, '--data-root', tiny_synthvoc, '--out-dir', out)
    png = osp.join(out, 'vis_data', 'vis_image', 'similarity_maps_0.png')
    assert png in proc.stdout
    grid = mmcv.imread(png)
    assert grid.ndim == 3 and grid.shape[1] > grid.shape[0] > 64

    saved = np.load(osp.join(out, 'similarity_maps.npz'))
    assert saved['cells'].tolist() == [[5, 2], [1, 6]]
    assert saved['points'].tolist() == [[44, 20], [12, 52]]

    # W^f of the first point, computed here from the image files
    def features(name):
        img = mmcv.imread(osp.join(tiny_synthvoc, 'JPEGImages', name + '.jpg'))
        data = model.data_preprocessor(
            dict(inputs=[torch.from_numpy(img.transpose(2, 0, 1).copy())]),
            False)
        with torch.no_grad():
            return model(data['inputs'], mode='tensor')[0]  # (D, 8, 8)

    vector = features(SOURCE)[:, 5, 2][None]  # (1, D)
    for target in TARGETS:
        expected = similarity_maps(vector, features(target),
                                   cfg.model.head.alpha).view(8, 8)
        np.testing.assert_allclose(saved[f'wf_{target}'][0], expected,
                                   rtol=1e-4, atol=1e-7)
