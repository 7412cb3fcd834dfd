# Copyright (c) mmcyc contributors. All rights reserved.
"""Fit LPCAM's prototypes from a stage-1 classifier and its CAMs.

The step between stage-1 CAM inference and LPCAM inference
(``tools/fit_lpcam.py``; LPCAM's ``load_feature_select_and_cluster``):

1. build the LPCAM model of a config and load a stage-1 classifier
   checkpoint into it strictly (every key but the prototype buffers);
2. run its backbone over a split (the config's test dataloader with the
   split file replaced) at ``fit_cfg.scale``, without flips; read each
   image's stage-1 CAM from a CAM folder (``mmcyc.utils.cam_io``),
   nearest-resize it to the feature grid, and for each labelled class c
   take the vectors where ``CAM_c > cam_thr`` (class set) and ``< cam_thr``
   (context set);
3. keep at most ``fit_cfg.max_vectors`` vectors per (class, set): a uniform
   sample without replacement, the vectors of smallest random key, keys
   drawn per image from a generator seeded by ``(seed, image name)``, so
   the sample does not depend on the order of the images; held as fp16
   on the model's device (VOC, D = 4096, 8192 vectors: 2.7 GB in all);
4. ``LPCAM.fit_prototypes`` (cosine k-means, filtering by the classifier);
5. save ``{'state_dict', 'meta'}`` atomically; ``meta`` records the stage-1
   checkpoint (path and digest), the CAM folder, the split, ``fit_cfg``
   and per-class statistics. ``tools/test.py`` loads it strictly.
"""
import copy
import io
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar
from mmseg.registry import MODELS

from mmcyc.models.refiners.feature_bank import seeded_generator
from mmcyc.utils import CAMStore, atomic_open
from mmcyc.utils.manifest import bytes_digest, folder_key
from mmcyc.utils.state_dict_check import check_state_dict, unwrap_state_dict


def load_stage1_checkpoint(model: torch.nn.Module,
                           checkpoint: str,
                           data: Optional[bytes] = None) -> None:
    """Load a stage-1 classifier checkpoint into an LPCAM model, strictly.

    Every key of the model must be in the checkpoint, with its shape, but
    the prototype buffers (which a stage-1 checkpoint lacks; an LPCAM
    checkpoint's prototypes are loaded too), and nothing else may be.

    Args:
        model (nn.Module): The LPCAM model.
        checkpoint (str): The checkpoint's path (named in errors).
        data (bytes, optional): Its bytes, when already read (e.g. for
            their digest): the file is then not read again.

    Raises:
        ValueError: Naming the checkpoint and the offending keys.
    """
    loaded = torch.load(
        checkpoint if data is None else io.BytesIO(data),
        map_location='cpu', weights_only=False)
    state_dict = unwrap_state_dict(loaded, checkpoint)
    own = model.state_dict()
    full = {k: own[k] for k in model.PROTOTYPE_BUFFERS}
    full.update(state_dict)
    check_state_dict(model, full, f'checkpoint {checkpoint}',
                     hint=' (expected a stage-1 classifier checkpoint of '
                     'the same backbone and classes)')
    model.load_state_dict(full, strict=False)


class _SeededSample:
    """At most ``cap`` vectors of a stream: those of the smallest keys."""

    def __init__(self, cap: int):
        self.cap = cap
        self.keys: Optional[torch.Tensor] = None
        self.vectors: Optional[torch.Tensor] = None

    def add(self, keys: torch.Tensor, vectors: torch.Tensor) -> None:
        """Add vectors (M, D) with their keys (M, )."""
        if self.keys is not None:
            keys = torch.cat([self.keys, keys])
            vectors = torch.cat([self.vectors, vectors])
        if len(keys) > self.cap:
            keep = keys.topk(self.cap, largest=False).indices
            keys, vectors = keys[keep], vectors[keep]
        self.keys, self.vectors = keys, vectors

    def result(self, dim: int, device) -> torch.Tensor:
        if self.vectors is None:
            return torch.zeros(0, dim, device=device)
        return self.vectors


@torch.no_grad()
def gather_lpcam_sets(model: torch.nn.Module,
                      dataloader,
                      cam_dir: str,
                      progress: bool = True
                      ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """Each class's class-set and context-set vectors over a dataloader.

    Args:
        model (LPCAM): The model (its backbone, data preprocessor and
            ``fit_cfg``: ``scale``, ``cam_thr``, ``max_vectors``, ``seed``).
        dataloader: Batches of the split (images with ``img_path`` and
            ``gt_img_label``).
        cam_dir (str): Folder of the stage-1 CAMs of every image.
        progress (bool): Show an mmengine progress bar. Defaults to True.

    Returns:
        tuple[list[Tensor], list[Tensor]]: Per class, the sampled class-set
        vectors (N_c, D) and context-set vectors (M_c, D), fp16.

    Raises:
        FileNotFoundError: Naming the image whose CAM file is missing.
    """
    cfg = model.fit_cfg
    store = CAMStore(cam_dir)
    num_classes, dim = model.num_classes, model.in_channels
    device = model.classifier.weight.device
    samples = [[_SeededSample(cfg['max_vectors']) for _ in range(2)]
               for _ in range(num_classes)]
    bar = ProgressBar(len(dataloader.dataset)) if progress else None
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        for i, sample in enumerate(data['data_samples']):
            img_path = sample.metainfo['img_path']
            if not store.exists(img_path):
                raise FileNotFoundError(
                    f'stage-1 CAM {store.path(img_path)} of {img_path} not '
                    'found: write the CAMs of the fitting split with '
                    'tools/test.py --cam-dir first')
            height, width = sample.metainfo['img_shape'][:2]
            image = data['inputs'][i:i + 1, :, :height, :width]
            if cfg['scale'] != 1:
                size = (max(1, round(height * cfg['scale'])),
                        max(1, round(width * cfg['scale'])))
                image = F.interpolate(image, size=size,
                                      mode=model.test_cfg['resize_mode'],
                                      align_corners=False)
            feats = model.extract_feat(image)[0]  # (D, h, w)
            grid = feats.shape[1:]
            feats = feats.flatten(1).T.half()  # (hw, D)
            cam = store.load(img_path, num_classes,
                             (height, width)).to(device)
            cam = F.interpolate(cam[None], size=grid,
                                mode='nearest')[0].flatten(1)  # (C, hw)
            keys = torch.rand(
                num_classes, cam.shape[1],
                generator=seeded_generator(
                    cfg['seed'],
                    f'lpcam/sample/{osp.basename(img_path)}')).to(device)
            labels = sample.gt_img_label.to(device) > 0.5
            for c in torch.nonzero(labels).flatten().tolist():
                for kind, where in enumerate(
                    (cam[c] > cfg['cam_thr'], cam[c] < cfg['cam_thr'])):
                    samples[c][kind].add(keys[c][where], feats[where])
            if bar is not None:
                bar.update()
    class_sets = [s[0].result(dim, device) for s in samples]
    context_sets = [s[1].result(dim, device) for s in samples]
    return class_sets, context_sets


def fit_lpcam(config: Union[str, Config],
              checkpoint: str,
              cam_dir: str,
              split: str,
              out: str,
              cfg_options: Optional[dict] = None,
              device: Optional[str] = None,
              progress: bool = True) -> Dict:
    """Fit an LPCAM config's prototypes and save the LPCAM checkpoint.

    Args:
        config (str | Config): An LPCAM config (``configs/lpcam_*.py``).
        checkpoint (str): The stage-1 classifier checkpoint.
        cam_dir (str): Its CAMs of ``split`` (``tools/test.py --cam-dir``).
        split (str): Split file of the fitting images, relative to the test
            dataset's ``data_root`` (LPCAM: ``train.txt``).
        out (str): Where to write the LPCAM checkpoint (atomically).
        cfg_options (dict, optional): Merged into the config.
        device (str, optional): Defaults to CUDA when available.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        dict: The checkpoint's ``meta``.
    """
    start = time.perf_counter()
    cfg = Config.fromfile(config) if isinstance(config, str) else \
        copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmcyc  # noqa: F401  (registers the models and datasets)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    logger = MMLogger.get_current_instance()

    model = MODELS.build(cfg.model)
    if not hasattr(model, 'fit_prototypes'):
        raise ValueError(f'{cfg.filename}: model type {cfg.model.type} has '
                         'no prototypes to fit (expected LPCAM)')
    with open(checkpoint, 'rb') as f:  # read once: digest and weights
        blob = f.read()
    checkpoint_digest = bytes_digest(blob)  # of exactly what is loaded
    load_stage1_checkpoint(model, checkpoint, blob)
    model.to(device).eval()

    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg['dataset']['ann_file'] = split
    dataloader = Runner.build_dataloader(loader_cfg)
    classes: Sequence[str] = dataloader.dataset.metainfo['classes']
    class_names = list(classes[1:]) if len(classes) == model.num_classes + 1 \
        else None  # VOC-style metainfo lists the background first
    logger.info(f'LPCAM: gathering the vectors of {len(dataloader.dataset)}'
                f' images of {split}')
    class_sets, context_sets = gather_lpcam_sets(model, dataloader, cam_dir,
                                                 progress)
    logger.info('LPCAM: clustering')
    stats = model.fit_prototypes(class_sets, context_sets, class_names)
    for row in stats:
        logger.info(
            f'LPCAM class {row["class_name"]}: {row["class_vectors"]} class /'
            f' {row["context_vectors"]} context vectors -> '
            f'{row["class_prototypes"]} class / {row["context_prototypes"]} '
            'context prototypes')
    meta = dict(
        config=getattr(cfg, 'filename', None),
        stage1_checkpoint=osp.abspath(checkpoint),
        stage1_checkpoint_digest=checkpoint_digest,
        cam_dir=osp.abspath(cam_dir),
        cam_dir_key=folder_key(cam_dir),
        split=split,
        fit_cfg=dict(model.fit_cfg),
        classes=stats,
        fit_time_s=round(time.perf_counter() - start, 2))
    state_dict = {k: v.cpu() for k, v in model.state_dict().items()}
    with atomic_open(out) as f:
        torch.save(dict(state_dict=state_dict, meta=meta), f)
    logger.info(f'LPCAM checkpoint written to {out} '
                f'({meta["fit_time_s"]} s)')
    return meta
