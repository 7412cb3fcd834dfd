"""Part correspondence: mmcyc.apis.correspondence and
tools/analysis_tools/correspondence.py on the tiny synthetic dataset.

The CyCSNet and classifier checkpoints are untrained tiny models and the
stage-1 CAMs are made from the masks: the plumbing (pairs, grids, counting,
JSON, drawing) does not depend on training. An oracle model whose features
are the ground-truth part fractions checks the alignment of features, CAMs
and part maps end to end.
"""
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmcyc.apis import evaluate_correspondence, load_cycsnet, sample_pairs
from mmcyc.datasets.image_label_split import config_split
from mmcyc.datasets.synthvoc import decode_part_map, load_part_map
from mmcyc.evaluation.functional import part_cells
from mmcyc.utils import CAMStore, cam_name

CONFIG = 'tests/data/cyc_tiny_synthvoc.py'
TOOL = 'tools/analysis_tools/correspondence.py'
SPLIT = 'ImageSets/Segmentation/train_aug.txt'


def test_sample_pairs_deterministic_and_sharing():
    names = ['a', 'b', 'c', 'd', 'e']
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 0],
                       [0, 0, 1]])
    pairs = sample_pairs(names, labels, 2, seed=0)
    assert pairs == sample_pairs(names, torch.as_tensor(labels), 2, seed=0)
    for s, t in pairs:
        i, j = names.index(s), names.index(t)
        assert s != t and (labels[i] & labels[j]).any()
    sources = [s for s, _ in pairs]
    # a: {b, d}; b: {a, c, d} -> 2; c: {b}; d: {a, b}; e: none
    assert sources == ['a', 'a', 'b', 'b', 'c', 'd', 'd']
    assert len(set(pairs)) == len(pairs)
    every = sample_pairs(names, labels, 10, seed=1)
    assert sorted(every) == sorted([('a', 'b'), ('a', 'd'), ('b', 'a'),
                                    ('b', 'c'), ('b', 'd'), ('c', 'b'),
                                    ('d', 'a'), ('d', 'b')])
    assert any(sample_pairs(names, labels, 1, seed=s) != sample_pairs(
        names, labels, 1, seed=0) for s in range(1, 6))
    with pytest.raises(ValueError, match='pairs_per_image'):
        sample_pairs(names, labels, 0)
    with pytest.raises(ValueError, match=r'\(N, C\) with N = 5'):
        sample_pairs(names, labels[:4], 1)


@pytest.fixture(scope='module')
def stage_inputs(tiny_stage_inputs):
    """Untrained tiny CyCSNet and classifier checkpoints and mask CAMs."""
    inputs = tiny_stage_inputs
    return inputs['work'], inputs['cyc'], inputs['cls'], inputs['cam_dir']


@pytest.fixture(scope='module')
def dataset(tiny_synthvoc):
    init_default_scope('mmseg')
    import mmcyc  # noqa: F401
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(
        {'train_dataloader.dataset.dataset.data_root': tiny_synthvoc})
    dataset, data_root = config_split(cfg, SPLIT)
    assert data_root == tiny_synthvoc
    return dataset


def pairs_of(dataset, per_image=4, seed=0):
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    names = [cam_name(i['img_path']) for i in infos]
    labels = np.stack([i['img_label'] for i in infos])
    return sample_pairs(names, labels, per_image, seed)


class PartOracle(nn.Module):
    """F = the image's ground-truth part fractions (C * P, h, w), read
    from the part map of the image the preprocessor saw last."""

    def __init__(self, data_root):
        super().__init__()
        self.data_root = data_root
        self.anchor = nn.Parameter(torch.zeros(1))

    def data_preprocessor(self, data, training):
        self.name = cam_name(data['data_samples'][0].metainfo['img_path'])
        return dict(inputs=torch.stack(data['inputs']).float(),
                    data_samples=data['data_samples'])

    def forward(self, inputs, mode='tensor'):
        class_id, role = decode_part_map(load_part_map(self.data_root,
                                                       self.name))
        frac = part_cells(class_id, role, 20, 2, 8)  # (20, 2, h, w)
        return frac.flatten(0, 1)[None]  # (1, 40, h, w)


def test_oracle_features_find_their_parts(dataset, stage_inputs,
                                          tiny_synthvoc):
    _, _, _, cam_dir = stage_inputs
    pairs = pairs_of(dataset)
    result = evaluate_correspondence(
        PartOracle(tiny_synthvoc), dataset, pairs, CAMStore(cam_dir),
        tiny_synthvoc, progress=False)
    assert result['count'] > 20 and result['pairs'] == len(pairs)
    assert result['acc'] >= 90.0
    assert result['images'] == len({n for p in pairs for n in p})
    # per-class details add up to the total
    assert sum(c['hits'] for c in result['per_class'].values()) == \
        result['hits']
    assert all(c['count'] == sum(p['count'] for p in c['per_part'])
               for c in result['per_class'].values())
    # peaks on the reference's own part, i.e. on an object; a few part cells
    # are mostly background (thin parts). (The oracle's cosines tie: every
    # cell touching the part has the same direction.)
    assert result['peak_background'] <= 10.0
    # kept in the object the oracle finds its part too, far above chance
    assert result['acc_object'] >= 90.0
    assert 0.0 < result['chance_object'] < 60.0
    assert result['other_part_object'] <= 100.0 - result['acc_object']
    # and it tells the classes apart where t holds two
    assert result['count_class_object'] > 0
    assert result['class_object'] >= 90.0
    assert result['chance_class_object'] < 90.0


class PositionOracle(PartOracle):
    """F = a one-hot code of each cell's position, the same in every image:
    the shortcut that solves the paper's cycle without any match."""

    def forward(self, inputs, mode='tensor'):
        height, width = (-(-v // 8) for v in inputs.shape[-2:])
        code = torch.eye(height * width).view(height * width, height, width)
        return code[None]  # (1, h * w, h, w)


def test_position_code_peaks_at_its_own_cell(dataset, stage_inputs,
                                             tiny_synthvoc):
    _, _, _, cam_dir = stage_inputs
    result = evaluate_correspondence(
        PositionOracle(tiny_synthvoc), dataset, pairs_of(dataset),
        CAMStore(cam_dir), tiny_synthvoc, progress=False)
    assert result['count'] > 20
    assert result['peak_same_cell'] == 100.0
    assert result['peak_same_cell_cosine'] == 100.0
    assert 0.0 <= result['peak_background'] <= 100.0


def test_missing_part_map_is_named(dataset, stage_inputs, tmp_path):
    _, cyc, _, cam_dir = stage_inputs
    pairs = pairs_of(dataset)[:1]
    with pytest.raises(FileNotFoundError, match='SynthParts'):
        evaluate_correspondence(PartOracle(str(tmp_path)), dataset, pairs,
                                CAMStore(cam_dir), str(tmp_path),
                                progress=False)
    with pytest.raises(ValueError, match="'nope' is not in the dataset"):
        evaluate_correspondence(PartOracle(str(tmp_path)), dataset,
                                [('nope', pairs[0][1])], CAMStore(cam_dir),
                                str(tmp_path), progress=False)


def run(run_tool, python, root, checkpoint, cam_dir, out, *extra):
    return run_tool(
        python, TOOL, CONFIG, checkpoint, '--cam-dir', cam_dir, '--split',
        SPLIT, '--out', out, *extra, '--cfg-options',
        f'train_dataloader.dataset.dataset.data_root={root}')


def test_tool_cls_and_cyc(stage_inputs, tiny_synthvoc, dataset, run_tool,
                          python):
    work, cyc, cls, cam_dir = stage_inputs
    out_cls, out_cyc = str(work / 'cls.json'), str(work / 'cyc.json')
    vis = str(work / 'vis')
    run(run_tool, python, tiny_synthvoc, '-', cam_dir, out_cls,
        '--init-from-classifier', cls)
    proc = run(run_tool, python, tiny_synthvoc, cyc, cam_dir, out_cyc,
               '--draw', '3', '--vis-dir', vis)
    with open(out_cls) as f:
        res_cls = json.load(f)
    with open(out_cyc) as f:
        res_cyc = json.load(f)
    assert res_cls['features'] == 'cls' and res_cyc['features'] == 'cyc'
    pairs = pairs_of(dataset)
    for res in (res_cls, res_cyc):
        assert res['pairs'] == len(pairs)
        assert 0 <= res['hits'] <= res['count']
        assert res['corr_acc'] == pytest.approx(
            100 * res['hits'] / res['count'])
        for key in ('peak_same_cell', 'peak_background',
                    'peak_same_cell_cosine', 'peak_background_cosine',
                    'corr_acc_object', 'corr_chance_object',
                    'corr_other_part_object', 'corr_class_object',
                    'corr_chance_class_object'):
            assert 0.0 <= res[key] <= 100.0
    # the references depend on the CAMs and part maps only: the same pairs
    # give the same counts whatever the features
    assert res_cls['count'] == res_cyc['count'] > 0

    # the tool's numbers are the library's on the same model and pairs
    model = load_cycsnet(Config.fromfile(CONFIG).model, checkpoint=cyc)
    result = evaluate_correspondence(model, dataset, pairs,
                                     CAMStore(cam_dir), tiny_synthvoc,
                                     progress=False)
    assert (result['hits'], result['count']) == (res_cyc['hits'],
                                                 res_cyc['count'])
    assert result['acc_object'] == pytest.approx(res_cyc['corr_acc_object'])
    assert result['class_object'] == pytest.approx(
        res_cyc['corr_class_object'])
    assert res_cls['count_class_object'] == \
        res_cyc['count_class_object'] == result['count_class_object']
    # the chance depends on the pairs, CAMs and part maps only
    assert res_cls['corr_chance_object'] == pytest.approx(
        res_cyc['corr_chance_object'])

    png = osp.join(vis, 'vis_data', 'vis_image', 'correspondence_0.png')
    assert png in proc.stdout
    grid = mmcv.imread(png)
    # 3 rows (points), the source and 1-3 targets, 64 px cells
    assert grid.ndim == 3 and grid.shape[0] > 3 * 64
    assert grid.shape[1] > 2 * 64


def test_tool_rejects_checkpoint_with_classifier(stage_inputs, python,
                                                 tiny_synthvoc):
    import subprocess
    work, cyc, cls, cam_dir = stage_inputs
    proc = subprocess.run(
        [python, TOOL, CONFIG, cyc, '--cam-dir', cam_dir,
         '--init-from-classifier', cls], capture_output=True, text=True)
    assert proc.returncode == 2 and "'-' with --init-from-classifier" in \
        proc.stderr


def test_wrong_checkpoint_is_named(stage_inputs):
    _, _, cls, _ = stage_inputs
    with pytest.raises(ValueError, match=f'checkpoint {cls} does not match'):
        load_cycsnet(Config.fromfile(CONFIG).model, checkpoint=cls)
    with pytest.raises(ValueError, match='exactly one'):
        load_cycsnet(Config.fromfile(CONFIG).model)


def test_cycsnet_checkpoint_of_another_width_is_refused(stage_inputs,
                                                        tmp_path):
    """Same keys, one tensor of another shape: refused, not half-loaded."""
    _, cyc, _, _ = stage_inputs
    loaded = torch.load(cyc, map_location='cpu', weights_only=False)
    key = next(k for k in loaded['state_dict'] if k.endswith('conv1a.weight'))
    weight = loaded['state_dict'][key]
    loaded['state_dict'][key] = weight[:1]
    path = str(tmp_path / 'narrower.pth')
    torch.save(loaded, path)
    with pytest.raises(ValueError, match=f'checkpoint {path} does not match'
                       rf".*1 shape mismatches \['{key}: checkpoint "
                       rf'\(1, {weight.shape[1]}'):
        load_cycsnet(Config.fromfile(CONFIG).model, checkpoint=path)


def test_load_cycsnet_from_the_classifier(stage_inputs):
    """``classifier_checkpoint``: F and C are the classifier's, read by
    ``init_weights()`` (building reads no file)."""
    _, _, cls, _ = stage_inputs
    init_default_scope('mmseg')
    model = load_cycsnet(Config.fromfile(CONFIG).model,
                         classifier_checkpoint=cls)
    assert not model.training
    source = torch.load(cls, map_location='cpu',
                        weights_only=False)['state_dict']
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, source['backbone.' + key]), key
    for key, value in model.cam_classifier.state_dict().items():
        assert torch.equal(value, source[key]), key
