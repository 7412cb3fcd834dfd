# Copyright (c) mmcyc contributors. All rights reserved.
"""Part-correspondence diagnostic of CyCSNet's F on SynthVOC (library step).

Measures the paper's central claim (Sect. 3.2-3.3, Fig. 3) where the parts
are known: for a reference vector taken on part k of class c in a source
image s (a feature cell on the part whose stage-1 CAM ``C^s_c`` exceeds
``beta1``), does the peak of its ``W^f`` (Eq. 3-4) in another image t of
class c land on part k of t's object of class c? The counting rule and the
grid rule are those of :mod:`mmcyc.evaluation.functional.correspondence`;
this module loads what it needs:

- F's features of each image (scale 1, normalised by the model's data
  preprocessor, ``model(inputs, mode='tensor')``), computed once per image;
- its stage-1 CAM (:class:`~mmcyc.utils.CAMStore`, (C, H, W) at the image
  size) and its ground-truth part map (``<data_root>/SynthParts/<name>.png``,
  :func:`~mmcyc.datasets.synthvoc.load_part_map`), both brought to F's
  stride-8 grid by psa's pad-then-average rule.

Run on the same pairs with two feature sets: the stage-1 classifier's
backbone through b6 (F's initialisation, ``load_cycsnet(...,
classifier_checkpoint=...)``) and the trained CyCSNet (``load_cycsnet(...,
checkpoint=...)``); ``tools/analysis_tools/correspondence.py`` is the CLI.
"""
import math
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmcyc.datasets.synthvoc import NUM_PARTS, decode_part_map, load_part_map
from mmcyc.evaluation.functional.correspondence import (
    MIN_FRACTION, cells_to_grid, class_cells, class_separation_hits,
    correspondence_hits, correspondence_summary, counted_references,
    object_correspondence_hits, part_cells, reference_mask)
from mmcyc.evaluation.functional.peak_shortcuts import peak_shortcut_counts
from mmcyc.utils import CAMStore, cam_name

Pair = Tuple[str, str]


def sample_pairs(names: Sequence[str],
                 labels: Union[np.ndarray, torch.Tensor, Sequence],
                 pairs_per_image: int,
                 seed: int = 0) -> List[Pair]:
    """Draw source-target pairs of different images sharing a class.

    For each source in ``names`` order, up to ``pairs_per_image`` distinct
    targets are drawn without replacement among the other images with a
    common class (fewer when fewer exist), from one ``torch.Generator``
    seeded with ``seed``: the same arguments always give the same list.

    Args:
        names (Sequence[str]): N distinct image names.
        labels (np.ndarray | Tensor | Sequence): Multi-hot image labels,
            shape (N, C).
        pairs_per_image (int): Targets per source, >= 1.
        seed (int): Seed of the generator. Defaults to 0.

    Returns:
        list[tuple[str, str]]: ``(s, t)`` pairs, ``s != t``, grouped by
        source in ``names`` order.
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError('image names must be distinct')
    if not isinstance(pairs_per_image, int) or pairs_per_image < 1:
        raise ValueError(
            f'pairs_per_image must be an int >= 1, got {pairs_per_image!r}')
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
    if labels.dim() != 2 or labels.shape[0] != len(names):
        raise ValueError(f'labels must be (N, C) with N = {len(names)} names, '
                         f'got {tuple(labels.shape)}')
    shares = (labels @ labels.t()) > 0  # (N, N)
    shares.fill_diagonal_(False)
    generator = torch.Generator().manual_seed(int(seed))
    pairs = []
    for s, row in enumerate(shares):
        candidates = row.nonzero().flatten()  # (M, )
        order = torch.randperm(len(candidates), generator=generator)
        for t in candidates[order[:pairs_per_image]].tolist():
            pairs.append((names[s], names[t]))
    return pairs


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device('cpu')


class _ImageCells:
    """Per-image inputs of the counting, computed once per name.

    ``self(name)`` returns a dict with ``feat`` (D, h, w) fp32 on the
    device, ``cam`` (C, h, w), ``parts`` (C, P, h, w), ``objects`` (h, w,
    the fraction of each cell on an object of any class) and ``classes``
    (C, h, w, the fraction on an object of each class) on F's grid,
    ``img_path`` and ``size`` (H, W). Everything of every image asked for
    stays cached: part maps exist only for SynthVOC, whose images are small
    (96 x 96: 12 x 12 cells).
    """

    def __init__(self, model: nn.Module, dataset, cam_store: CAMStore,
                 data_root: str, stride: int, num_parts: int,
                 device: torch.device):
        self.model, self.dataset, self.cam_store = model, dataset, cam_store
        self.data_root, self.stride, self.num_parts = (data_root, stride,
                                                       num_parts)
        self.device = device
        self.index = {
            cam_name(dataset.get_data_info(i)['img_path']): i
            for i in range(len(dataset))
        }
        if not self.index:
            raise ValueError('the dataset is empty')
        first = dataset.get_data_info(0)
        self.num_classes = len(first['img_label'])
        self.cache: Dict[str, dict] = {}

    def __call__(self, name: str) -> dict:
        if name not in self.cache:
            self.cache[name] = self._compute(name)
        return self.cache[name]

    @torch.no_grad()
    def _compute(self, name: str) -> dict:
        if name not in self.index:
            raise ValueError(
                f'image {name!r} is not in the dataset (ann_file '
                f'{getattr(self.dataset, "ann_file", "?")})')
        data = pseudo_collate([self.dataset[self.index[name]]])
        img_path = data['data_samples'][0].metainfo['img_path']
        size = tuple(data['inputs'][0].shape[-2:])  # (H, W) as loaded
        data = self.model.data_preprocessor(data, False)
        feat = self.model(data['inputs'], mode='tensor')[0]
        feat = feat.to(self.device, torch.float32)  # (D, h, w)
        grid = tuple(math.ceil(v / self.stride) for v in size)
        if tuple(feat.shape[1:]) != grid:
            raise ValueError(
                f'features of {img_path} are {tuple(feat.shape[1:])}, not '
                f'the stride-{self.stride} grid {grid} of its {size} image')
        cam = self.cam_store.load(img_path, self.num_classes)  # (C, H, W)
        class_id, role = decode_part_map(load_part_map(self.data_root, name))
        for what, shape, path in (
                ('stage-1 CAM', tuple(cam.shape[1:]),
                 self.cam_store.path(img_path)),
                ('part map', class_id.shape, f'{self.data_root}/SynthParts/'
                 f'{name}.png')):
            if tuple(shape) != size:
                raise ValueError(f'{what} {path} is {tuple(shape)}, but the '
                                 f'image {img_path} is {size}')
        parts = part_cells(
            torch.from_numpy(class_id).to(self.device),
            torch.from_numpy(role).to(self.device), self.num_classes,
            self.num_parts, self.stride)  # (C, P, h, w)
        objects = torch.from_numpy(class_id > 0).to(self.device, torch.float32)
        return dict(
            feat=feat,
            cam=cells_to_grid(cam.to(self.device), self.stride),  # (C, h, w)
            parts=parts,
            objects=cells_to_grid(objects, self.stride),  # (h, w)
            classes=class_cells(
                torch.from_numpy(class_id).to(self.device), self.num_classes,
                self.stride),  # (C, h, w)
            img_path=img_path,
            size=size)


def _class_names(dataset, num_classes: int) -> List[str]:
    classes = list((getattr(dataset, 'metainfo', None) or {}).get(
        'classes', ()))
    if len(classes) == num_classes + 1:  # background first
        return [str(c) for c in classes[1:]]
    if len(classes) == num_classes:
        return [str(c) for c in classes]
    return [str(c + 1) for c in range(num_classes)]


def evaluate_correspondence(model: nn.Module,
                            dataset,
                            pairs: Sequence[Pair],
                            cam_store: CAMStore,
                            data_root: str,
                            beta1: float = 0.3,
                            device: Optional[Union[str, torch.device]] = None,
                            stride: int = 8,
                            num_parts: int = NUM_PARTS,
                            min_fraction: float = MIN_FRACTION,
                            progress: bool = True,
                            logger: str = 'current') -> dict:
    """Part-correspondence accuracy of F over image pairs.

    Per pair (s, t): :func:`~mmcyc.evaluation.functional.correspondence.
    correspondence_hits` on F_s, s's pooled stage-1 CAM and part fractions,
    F_t and t's part fractions; the (C, P) hits and counts are summed over
    the pairs. Each image's features, CAM and part map are computed / read
    once, whatever the number of pairs it is in.

    Args:
        model (nn.Module): A built CyCSNet (see :func:`load_cycsnet`), in
            eval mode; ``model(inputs, mode='tensor')`` gives F (N, D, h, w)
            after ``model.data_preprocessor(data, False)``.
        dataset: An image-label dataset (``VOCImageLabelDataset`` with the
            pipeline ``LoadCheckedImageFromFile`` + ``PackImageLabelInputs``)
            holding every image of ``pairs``.
        pairs (Sequence[tuple[str, str]]): (s, t) image names.
        cam_store (CAMStore): Stage-1 CAMs, (C, H, W) at the image size.
        data_root (str): SynthVOC root holding ``SynthParts/``.
        beta1 (float): CAM threshold of the references. Defaults to 0.3.
        device (str | torch.device, optional): Where the products run.
            Defaults to None: the model's device.
        stride (int): F's stride. Defaults to 8.
        num_parts (int): Parts per class. Defaults to 2 (SynthVOC).
        min_fraction (float): Smallest part fraction of a reference cell.
            Defaults to 0.5.
        progress (bool): Show an mmengine ProgressBar. Defaults to True.
        logger (str): ``print_log`` logger. Defaults to 'current'.

    Returns:
        dict: ``acc`` (percent, nan without any reference), ``hits``,
        ``count``, ``per_class`` (see :func:`~mmcyc.evaluation.functional.
        correspondence.correspondence_summary`), ``pairs`` (number of
        pairs), ``pairs_counted`` (pairs with at least one reference
        counted), ``images`` (distinct images), and where the counted
        references peak (:mod:`~mmcyc.evaluation.functional.peak_shortcuts`,
        percent of the counted reference cells, nan without any):
        ``peak_same_cell`` and ``peak_background`` for the raw products,
        ``peak_same_cell_cosine`` and ``peak_background_cosine`` for cosine
        similarities; ``acc_object``, the accuracy with each peak kept in
        t's object of the reference's class
        (:func:`~mmcyc.evaluation.functional.correspondence.
        object_correspondence_hits`: does F tell an object's parts apart,
        whatever the background does?), ``chance_object``, what cells
        drawn at random from those objects would score, and
        ``other_part_object``, the share of the references whose
        object-kept peak touches another part of their class and not
        their own (the rest of the misses are on the body; percent, nan
        without any reference); ``class_object``: does F still tell the
        classes apart (:func:`~mmcyc.evaluation.functional.correspondence.
        class_separation_hits`: with each peak kept in t's objects, the
        share landing on an object of the reference's class, over the
        ``count_class_object`` references whose t also holds another
        class; percent, nan without any) and ``chance_class_object``, what
        a random object cell of t would score.
    """
    device = torch.device(device) if device is not None else \
        _model_device(model)
    cells = _ImageCells(model, dataset, cam_store, data_root, stride,
                        num_parts, device)
    hits = torch.zeros((cells.num_classes, num_parts), dtype=torch.long,
                       device=device)
    counts = torch.zeros_like(hits)
    # [same cell, background, references] for the raw products, the cosine
    shortcuts = torch.zeros((2, 3), dtype=torch.long, device=device)
    # hits and expected hits by chance with the peaks kept in t's object
    object_hits = torch.zeros_like(hits)
    object_other = torch.zeros_like(hits)
    object_chance = torch.zeros(hits.shape, device=device)
    # hits, references and expected hits of the class question
    class_sums = torch.zeros(3, device=device)
    counted = 0
    print_log(f'correspondence: {len(pairs)} pairs, beta1 {beta1}, stride '
              f'{stride}, on {device}', logger=logger)
    bar = ProgressBar(len(pairs)) if progress and len(pairs) else None
    for s_name, t_name in pairs:
        if s_name == t_name:
            raise ValueError(f'pair ({s_name}, {t_name}): s and t must differ')
        s, t = cells(s_name), cells(t_name)
        pair_hits, pair_counts = correspondence_hits(
            s['feat'], s['cam'], s['parts'], t['feat'], t['parts'], beta1,
            min_fraction)  # (C, P) each
        hits += pair_hits
        counts += pair_counts
        pair_hits, _, pair_chance, pair_other = object_correspondence_hits(
            s['feat'], s['cam'], s['parts'], t['feat'], t['parts'],
            t['classes'], beta1, min_fraction)  # (C, P) each
        object_hits += pair_hits
        object_chance += pair_chance
        object_other += pair_other
        class_hits, class_counts, class_chance = class_separation_hits(
            s['feat'], s['cam'], s['parts'], t['feat'], t['parts'],
            t['classes'], beta1, min_fraction)  # (C, ) each
        class_sums += torch.stack([class_hits.sum().float(),
                                   class_counts.sum().float(),
                                   class_chance.sum()])
        counted += int(pair_counts.sum() > 0)
        refs = counted_references(s['cam'], s['parts'], t['parts'], beta1,
                                  min_fraction)  # (C, P, h_s * w_s)
        cells_st = refs.any(dim=0).any(dim=0).nonzero().flatten()  # (S, )
        for row, cosine in enumerate((False, True)):
            shortcuts[row] += peak_shortcut_counts(
                s['feat'], cells_st, t['feat'], t['objects'], cosine)
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    result = correspondence_summary(
        hits, counts, _class_names(dataset, cells.num_classes))
    result.update(pairs=len(pairs), pairs_counted=counted,
                  images=len(cells.cache))
    num_refs = int(counts.sum())

    def percent(count: float) -> float:  # of the counted references
        return 100.0 * count / num_refs if num_refs else float('nan')

    result.update(acc_object=percent(int(object_hits.sum())),
                  chance_object=percent(float(object_chance.sum())),
                  other_part_object=percent(int(object_other.sum())))
    class_hit, class_count, class_chance = class_sums.tolist()
    result.update(
        class_object=100.0 * class_hit / class_count
        if class_count else float('nan'),
        chance_class_object=100.0 * class_chance / class_count
        if class_count else float('nan'),
        count_class_object=int(class_count))
    for row, suffix in enumerate(('', '_cosine')):
        same, background, total = shortcuts[row].tolist()
        result[f'peak_same_cell{suffix}'] = \
            100.0 * same / total if total else float('nan')
        result[f'peak_background{suffix}'] = \
            100.0 * background / total if total else float('nan')
    print_log(f'correspondence accuracy {result["acc"]:.2f} % '
              f'({result["hits"]} / {result["count"]} references of '
              f'{counted} of {len(pairs)} pairs, {len(cells.cache)} images); '
              f'with the peaks kept in the object '
              f'{result["acc_object"]:.2f} % (chance '
              f'{result["chance_object"]:.2f} %); '
              f'peaks at the own cell {result["peak_same_cell"]:.1f} % '
              f'(cosine {result["peak_same_cell_cosine"]:.1f} %), on the '
              f'background {result["peak_background"]:.1f} % (cosine '
              f'{result["peak_background_cosine"]:.1f} %)',
              logger=logger)
    return result


def _interleave(groups: Sequence[Sequence]) -> list:
    """Round-robin over groups: the first of each, then the second, ..."""
    out = []
    for rank in range(max((len(g) for g in groups), default=0)):
        out.extend(g[rank] for g in groups if rank < len(g))
    return out


def correspondence_figure(model: nn.Module,
                          dataset,
                          pairs: Sequence[Pair],
                          cam_store: CAMStore,
                          data_root: str,
                          num_points: int,
                          alpha: float = 20.0,
                          beta1: float = 0.3,
                          device: Optional[Union[str, torch.device]] = None,
                          stride: int = 8,
                          num_parts: int = NUM_PARTS,
                          min_fraction: float = MIN_FRACTION,
                          max_targets: int = 3) -> Tuple[np.ndarray, dict]:
    """The paper's Fig. 3 for counted references of the first pairs.

    The source is that of the first pair with a counted reference; the
    points are up to ``num_points`` of that pair's counted references, taken
    in turn from each (class, part) so that every part shows; the targets
    are the targets of up to ``max_targets`` pairs of that source. Each
    point's ``W^f`` (Eq. 3-4, ``similarity_maps`` with ``alpha``) is
    replicated from F's grid to the target's pixels (cell (i, j) covers
    ``[s i, s i + s) x [s j, s j + s)``) and drawn by
    :func:`~mmcyc.visualization.similarity_maps.draw_similarity_maps`.

    Args:
        model, dataset, pairs, cam_store, data_root, beta1, device, stride,
            num_parts, min_fraction: As in :func:`evaluate_correspondence`.
        num_points (int): Source points, >= 1.
        alpha (float): Softmax scale of Eq. 4. Defaults to 20.0.
        max_targets (int): Target columns at most. Defaults to 3.

    Returns:
        tuple[np.ndarray, dict]: The RGB uint8 grid, and ``source``,
        ``targets`` (names), ``cells`` ((i, j) per point), ``points`` ((y,
        x) source pixels), ``classes`` (class id c, 1-based) and ``parts``
        (k) per point, and ``peaks`` ((i, j) of each point's peak, per
        target).

    Raises:
        ValueError: When no pair has a counted reference.
    """
    from mmcyc.models.utils.cam_refinement import similarity_maps
    from mmcyc.visualization.similarity_maps import draw_similarity_maps

    if not isinstance(num_points, int) or num_points < 1:
        raise ValueError(f'num_points must be an int >= 1, got {num_points!r}')
    device = torch.device(device) if device is not None else \
        _model_device(model)
    cells = _ImageCells(model, dataset, cam_store, data_root, stride,
                        num_parts, device)
    first = None
    for s_name, t_name in pairs:
        s, t = cells(s_name), cells(t_name)
        refs = reference_mask(s['cam'], s['parts'], beta1, min_fraction)
        refs = refs & (t['parts'] > 0).flatten(2).any(2)[..., None, None]
        if bool(refs.any()):
            first = (s_name, t_name, refs)  # (C, P, h, w)
            break
    if first is None:
        raise ValueError(f'none of the {len(pairs)} pairs has a reference on '
                         f'a part visible in its target (beta1 {beta1})')
    s_name, t_name, refs = first
    source = cells(s_name)
    width = source['feat'].shape[2]
    groups = [[(c, k, int(i)) for i in refs[c, k].flatten().nonzero()]
              for c, k in refs.flatten(2).any(2).nonzero().tolist()]
    chosen = _interleave(groups)[:num_points]
    flat = torch.tensor([i for _, _, i in chosen], device=device)  # (N, )
    vectors = source['feat'].flatten(1)[:, flat].t()  # (N, D)
    grid_cells = [(i // width, i % width) for _, _, i in chosen]
    height_s, width_s = source['size']
    points = [(min(i * stride + (stride - 1) / 2, height_s - 1),
               min(j * stride + (stride - 1) / 2, width_s - 1))
              for i, j in grid_cells]
    targets = [t_name] + [t for s, t in pairs
                          if s == s_name and t != t_name][:max_targets - 1]
    maps, images, peaks = [], [], {}
    for name in targets:
        target = cells(name)
        h, w = target['feat'].shape[1:]
        wf = similarity_maps(vectors, target['feat'], alpha)  # (N, h * w)
        peak = wf.argmax(dim=1)  # (N, )
        peaks[name] = [(int(p) // w, int(p) % w) for p in peak]
        wf = wf.view(len(chosen), 1, h, w)  # (N, 1, h, w)
        pixels = F.interpolate(wf, scale_factor=stride, mode='nearest')
        pixels = pixels[:, 0, :target['size'][0], :target['size'][1]]
        maps.append(pixels.cpu().numpy())  # (N, H_t, W_t)
        images.append(mmcv.imread(target['img_path'], channel_order='rgb'))
    grid = draw_similarity_maps(
        mmcv.imread(source['img_path'], channel_order='rgb'), points,
        images, maps, titles=[s_name, *targets])
    info = dict(
        source=s_name,
        targets=targets,
        cells=grid_cells,
        points=points,
        classes=[c + 1 for c, _, _ in chosen],
        parts=[k for _, k, _ in chosen],
        peaks=peaks)
    return grid, info
