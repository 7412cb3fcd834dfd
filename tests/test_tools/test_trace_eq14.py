"""tools/analysis_tools/trace_eq14.py on the tiny synthetic dataset."""
import json
import os.path as osp

import numpy as np
import torch

from mmcyc.apis import sample_pairs
from mmcyc.datasets.cls_labels import load_cls_labels
from mmcyc.datasets.voc_image_label import read_image_names
from mmcyc.models.utils.cam import pool_scores
from mmcyc.utils import CAMStore

CONFIG = 'tests/data/cyc_tiny_synthvoc.py'
SPLIT = 'ImageSets/Segmentation/train_aug.txt'


def test_trace_counts_the_references(tiny_synthvoc, tiny_stage_inputs,
                                     run_tool, python, tmp_path):
    inputs = tiny_stage_inputs
    out = tmp_path / 'trace.json'
    run_tool(python, 'tools/analysis_tools/trace_eq14.py', CONFIG,
             inputs['cyc'], '--cam-dir', inputs['cam_dir'], '--split', SPLIT,
             '--pairs-per-image', '2', '--out', str(out), '--cfg-options',
             f'train_dataloader.dataset.dataset.data_root={tiny_synthvoc}')
    result = json.loads(out.read_text())
    # the references: cells whose 8x8-mean stage-1 CAM of a class shared by
    # the pair is above beta1 = 0.3, counted here from the files directly
    names = read_image_names(osp.join(tiny_synthvoc, SPLIT))
    labels = load_cls_labels(osp.join(tiny_synthvoc, 'cls_labels.npy'))
    label_rows = torch.stack([torch.from_numpy(labels[n]) for n in names])
    store = CAMStore(inputs['cam_dir'])
    expected = 0
    for s, t in sample_pairs(names, label_rows, 2, 0):
        shared = np.flatnonzero((labels[s] > 0) & (labels[t] > 0))
        cam = pool_scores(store.load(s, 20), 8)  # (20, h, w)
        expected += int((cam[shared] > 0.3).sum())
    assert result['references'] == expected > 0
    assert result['features'] == 'cyc' and result['pairs'] > 0
    assert 0 < result['max_wf_q10'] <= result['max_wf_q50'] <= \
        result['max_wf_q90'] <= result['max_wf_max'] <= 1
    for key in ('pass_share', 'same_position_share'):
        assert 0 <= result[key] <= 1
    assert result['on_object_share'] is None or \
        0 <= result['on_object_share'] <= 1
