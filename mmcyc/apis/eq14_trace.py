# Copyright (c) mmcyc contributors. All rights reserved.
"""Where Eq. 14 gains or loses: statistics of W^f on pairs of train images.

For each pair (s, t) sharing a class c, the references of s (cells of F's
grid where the pooled stage-1 CAM_c > beta1, as the feature bank selects
them) give W^f on F_t (Eq. 3-4). Counted over all references:

- ``max_wf_q10/q50/q90/max``: quantiles of each reference's largest W^f;
- ``pass_share``: share of references whose W^f exceeds Bg / epsilon
  somewhere (below it Eq. 14 never changes the CAM);
- ``same_position_share``: share whose W^f peak lies within one cell of the
  reference's own position in s (a positional, not semantic, match);
- ``on_object_share``: of the (reference, cell) pairs above Bg / epsilon,
  the share on a cell that touches class c in t's ground-truth mask.
"""
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.utils import ProgressBar
from PIL import Image

from mmcyc.models.utils.cam import cam_to_grid, pool_scores
from mmcyc.models.utils.cam_refinement import similarity_maps
from mmcyc.utils import CAMStore, cam_name
from .features import forward_features


@torch.no_grad()
def trace_eq14(model: torch.nn.Module,
               dataset,
               pairs: Sequence[Tuple[str, str]],
               cam_store: CAMStore,
               mask_dir: str,
               alpha: float = 20.0,
               beta1: float = 0.3,
               epsilon: float = 2.0,
               bg_score: float = 0.2,
               progress: bool = True) -> Dict[str, float]:
    """W^f statistics of F (``model``) on ``pairs`` (see the module doc).

    Args:
        model (nn.Module): A CyCSNet in eval mode (``load_cycsnet``).
        dataset: Image-label dataset holding every image of ``pairs``.
        pairs (Sequence[tuple[str, str]]): (s, t) image names.
        cam_store (CAMStore): The stage-1 CAMs.
        mask_dir (str): Folder of ground-truth ``<name>.png`` masks (e.g.
            ``SegmentationClassAug``), used only to count ``on_object``.
        alpha, beta1, epsilon, bg_score: As in ``CAMRefiner``.
        progress (bool): Show a progress bar.

    Returns:
        dict[str, float]: The statistics, plus ``references`` (count);
        ``on_object_share`` is None when no cell passes Bg / epsilon.
    """
    index = {
        cam_name(dataset.get_data_info(i)['img_path']): i
        for i in range(len(dataset))
    }
    cache = {}

    def cells(name: str) -> dict:
        if name not in cache:
            info = dataset.get_data_info(index[name])
            feat, _ = forward_features(model,
                                       pseudo_collate([dataset[index[name]]]))
            feat = feat.float()  # (D, h, w)
            labels = torch.as_tensor(info['img_label']) > 0.5  # (C, )
            cam = cam_to_grid(
                cam_store.load(info['img_path'], len(labels)),
                feat.shape[1:])  # (C, h, w)
            path = osp.join(mask_dir, name + '.png')
            if not osp.isfile(path):
                raise FileNotFoundError(f'ground-truth mask {path} not found')
            mask = torch.from_numpy(
                np.asarray(Image.open(path)).astype(np.int64))  # (H, W)
            onehot = torch.stack([(mask == c + 1).float()
                                  for c in range(len(labels))])  # (C, H, W)
            stride = -(-mask.shape[0] // feat.shape[1])
            touch = pool_scores(onehot, stride) > 0  # (C, h, w)
            cache[name] = dict(feat=feat, cam=cam, labels=labels,
                               touch=touch)
        return cache[name]

    max_wf: List[torch.Tensor] = []
    same_pos: List[torch.Tensor] = []
    passed = on_object = 0
    bar = ProgressBar(len(pairs)) if progress else None
    for s_name, t_name in pairs:
        s, t = cells(s_name), cells(t_name)
        width_s, width_t = s['feat'].shape[2], t['feat'].shape[2]
        for c in torch.nonzero(s['labels'] & t['labels']).flatten().tolist():
            refs = torch.nonzero(s['cam'][c].flatten() > beta1).flatten()
            if refs.numel() == 0:
                continue
            vectors = s['feat'].flatten(1)[:, refs].t()  # (S, D)
            wf = similarity_maps(vectors, t['feat'], alpha)  # (S, P)
            peak = wf.argmax(dim=1)  # (S, )
            max_wf.append(wf.max(dim=1).values)
            same_pos.append(((peak // width_t - refs // width_s).abs() <= 1)
                            & ((peak % width_t - refs % width_s).abs() <= 1))
            above = wf > bg_score / epsilon  # (S, P)
            passed += int(above.sum())
            on_object += int((above & t['touch'][c].flatten()).sum())
        if bar is not None:
            bar.update()
    if not max_wf:
        return dict(references=0)
    top = torch.cat(max_wf)  # (R, )
    return dict(
        references=int(top.numel()),
        max_wf_q10=float(top.quantile(0.1)),
        max_wf_q50=float(top.quantile(0.5)),
        max_wf_q90=float(top.quantile(0.9)),
        max_wf_max=float(top.max()),
        pass_share=float((top > bg_score / epsilon).float().mean()),
        same_position_share=float(torch.cat(same_pos).float().mean()),
        on_object_share=on_object / passed if passed else None)
