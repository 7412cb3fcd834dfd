# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 3 as a library step: refine stage-1 CAMs with a CyCSNet (Eq. 14)."""
import os
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.dist import all_gather_object, barrier, get_dist_info
from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar
from mmseg.evaluation import IoUMetric
from mmseg.registry import MODELS
from torch.utils.data import DataLoader, Subset

from mmcyc.datasets.image_label_split import (build_image_label_split,
                                              image_label_dataset_cfg)
from mmcyc.datasets.transforms import LoadCheckedAnnotations
from mmcyc.models.refiners import CAMRefiner
from mmcyc.models.utils.cam import cam_to_mask
from mmcyc.utils import CAMStore, cam_name
from mmcyc.utils.manifest import (digest, file_digest, finish_output_dir,
                                  folder_key, guard_output_dir)
from .cycsnet_loading import load_cycsnet
from .feature_bank_io import cached_feature_bank
from .features import forward_features

TRAIN_SPLIT = 'ImageSets/Segmentation/train.txt'
TRAIN_AUG_SPLIT = 'ImageSets/Segmentation/train_aug.txt'


def _image_loader(dataset, indices: Sequence[int],
                  workers: int) -> DataLoader:
    """One image per batch (each goes through F at its own size)."""
    return DataLoader(
        Subset(dataset, list(indices)), batch_size=1, shuffle=False,
        num_workers=workers, collate_fn=pseudo_collate)


def score_cam_stores(dataset, indices: Sequence[int],
                     stores: Dict[str, CAMStore], bg_score: float,
                     logger: Optional[MMLogger] = None) -> Dict[str, float]:
    """mIoU of each store's CAMs as pseudo masks, over every rank's targets.

    Each rank processes its ``indices``; mmseg's ``IoUMetric`` collects the
    per-image areas of all ranks (``evaluate(len(dataset))``), so every
    rank returns the mIoU of the whole split.

    Args:
        dataset: The image-label dataset of the targets (with masks).
        indices (Sequence[int]): This rank's targets.
        stores (dict[str, CAMStore]): Name -> CAM folder to score.
        bg_score (float): Background score of the pseudo masks.
        logger (MMLogger, optional): Logs each store's scoring.

    Returns:
        dict[str, float]: Name -> mIoU (%).
    """
    num_classes = len(dataset.metainfo['classes'])
    load_gt = LoadCheckedAnnotations(num_classes=num_classes)
    metrics = {}
    for key in stores:
        metrics[key] = IoUMetric(iou_metrics=['mIoU'], prefix=key)
        metrics[key].dataset_meta = dataset.metainfo
    for index in indices:
        info = dataset.get_data_info(index)
        gt = torch.from_numpy(load_gt(dict(info))['gt_seg_map'].copy())
        for key, store in stores.items():
            cam = store.load(info['img_path'], num_classes - 1)
            mask = cam_to_mask(cam[None], bg_score)  # (1, H, W)
            metrics[key].process({}, [
                dict(pred_sem_seg=dict(data=mask), gt_sem_seg=dict(data=gt))
            ])
    results = {}
    for key, metric in metrics.items():
        if logger is not None:
            logger.info(f'scoring the {key} CAMs as pseudo masks')
        results[key] = float(metric.evaluate(len(dataset))[f'{key}/mIoU'])
    return results


def refine_cams(cfg: Config,
                weights: dict,
                cam_dir: str,
                out_dir: str,
                split: str = TRAIN_SPLIT,
                bank_split: str = TRAIN_AUG_SPLIT,
                num_refs: Optional[int] = None,
                bank_file: Optional[str] = None,
                score: bool = False,
                workers: int = 2,
                overwrite: bool = False,
                device: Optional[torch.device] = None) -> dict:
    """Refine the stage-1 CAMs of a split with a CyCSNet (Eq. 14, Alg. 2).

    1. F's features of every image of ``bank_split`` and their stage-1 CAMs
       from ``cam_dir`` make the feature bank, cached as ``bank_file``
       (default ``out_dir/feature_bank.pth``; resumable; every rank builds
       a share of it).
    2. Every target of ``split`` (rank r of W takes targets r, r + W, ...,
       mmengine's ``DefaultSampler`` without shuffling) is refined and
       written to ``out_dir/<name>.npz`` (``mmcyc.utils.cam_io``); targets
       whose file exists are skipped, so a rerun resumes. ``out_dir`` is
       guarded by a manifest of the weights, settings, stage-1 CAMs and
       data: refined CAMs made from other inputs are an error, or removed
       with ``overwrite``.
    3. With ``score``, the refined and the stage-1 CAMs of the targets are
       scored as pseudo masks (background score ``refiner.bg_score``) with
       mmseg's ``IoUMetric``.

    Call it in every process of a distributed run (after ``init_dist``),
    with mmseg's default scope set and ``mmcyc`` imported. It turns
    ``torch.backends.cudnn.benchmark`` off (each image has its own shape).

    Args:
        cfg (Config): A CyCSNet config with a ``refiner`` entry (a
            ``CAMRefiner``); its training dataset gives the images, labels
            and ``data_root``.
        weights (dict): ``load_cycsnet``'s weights keywords
            (``cycsnet_weights``): ``checkpoint=`` (F trained by stage 2) or
            ``classifier_checkpoint=`` (F = the classifier's backbone).
        cam_dir (str): The stage-1 CAMs of the bank and target images.
        out_dir (str): Where the refined CAMs go.
        split (str): Targets' split file, relative to ``data_root``.
            Defaults to train.txt.
        bank_split (str): Split the references are sampled from. Defaults
            to train_aug.txt.
        num_refs (int, optional): N, overrides ``refiner.num_refs``.
        bank_file (str, optional): Feature bank cache.
        score (bool): Score the refined and stage-1 CAMs. Defaults to False.
        workers (int): Image loading processes. Defaults to 2.
        overwrite (bool): Empty ``out_dir`` when it holds refined CAMs of
            other inputs (one process only). Defaults to False.
        device (torch.device, optional): Defaults to the current CUDA
            device when there is one, else the CPU.

    Returns:
        dict: ``num_targets``, ``refined`` (this rank's targets refined now),
        ``missing_refs`` (class -> targets left unchanged for want of
        references, all ranks), ``num_refs``, ``bg_score``; with ``score``
        also ``mIoU`` and ``mIoU_unrefined`` (%).
    """
    rank, world_size = get_dist_info()
    if device is None:
        device = torch.device('cuda', torch.cuda.current_device()) \
            if torch.cuda.is_available() else torch.device('cpu')
    # every image goes through F at its own size: cudnn.benchmark would
    # autotune the convolutions afresh for each shape (slower, not faster)
    torch.backends.cudnn.benchmark = False
    dataset_cfg = image_label_dataset_cfg(cfg)
    refiner_cfg = dict(cfg.get('refiner') or dict(type='CAMRefiner'))
    if num_refs is not None:
        refiner_cfg['num_refs'] = num_refs
    # what the refined CAMs are made of: out_dir must hold only such files
    weights_file = weights.get('classifier_checkpoint') or \
        weights['checkpoint']
    parts = dict(
        weights=file_digest(weights_file),
        features='classifier' if 'classifier_checkpoint' in weights
        else 'cyc',
        model=digest(cfg.model.to_dict()),
        refiner=refiner_cfg,
        bank_split=bank_split,
        cams_read=folder_key(cam_dir) or osp.abspath(cam_dir),
        data_root=dataset_cfg.get('data_root'))
    if rank == 0:
        if overwrite and world_size > 1:
            raise ValueError('overwrite empties the output folder: run it '
                             'with one process, or delete it first')
        key = guard_output_dir(out_dir, parts, 'refined CAMs',
                               overwrite=overwrite)
    barrier()
    os.makedirs(out_dir, exist_ok=True)
    # one logger (and log file) per call: mmengine keeps loggers by name
    stamp = time.strftime('%Y%m%d_%H%M%S')
    logger = MMLogger.get_instance(
        f'mmcyc_refine_cam:{osp.abspath(out_dir)}:{stamp}:{time.time_ns()}',
        log_file=osp.join(out_dir, f'refine_cam_{stamp}.log'))

    refiner = MODELS.build(refiner_cfg)
    if not isinstance(refiner, CAMRefiner):
        raise ValueError(f'refiner must be a CAMRefiner, got {refiner_cfg}')
    model = load_cycsnet(cfg.model, device=device, **weights)
    bank_set = build_image_label_split(dataset_cfg, bank_split)
    target_set = build_image_label_split(dataset_cfg, split)
    num_classes = len(bank_set.get_data_info(0)['img_label'])
    cam_store, out_store = CAMStore(cam_dir), CAMStore(out_dir)
    logger.info(f'refiner {refiner_cfg}; {len(bank_set)} bank images '
                f'({bank_split}), {len(target_set)} targets ({split}), '
                f'{world_size} process(es) on {device}')

    # 1. the feature bank
    infos = [bank_set.get_data_info(i) for i in range(len(bank_set))]
    names = [cam_name(info['img_path']) for info in infos]
    labels = torch.stack([torch.as_tensor(i['img_label']) for i in infos])

    def features(indices):
        # with each image's size: a CAM of another size is an error
        for data in _image_loader(bank_set, indices, workers):
            feat, sample = forward_features(model, data)
            yield feat, sample.metainfo['ori_shape']

    bank_file = bank_file or osp.join(out_dir, 'feature_bank.pth')
    start = time.time()
    bank = cached_feature_bank(
        refiner, features, names, labels, cam_store, cache_file=bank_file,
        # by content: a copied checkpoint or CAM folder reuses the bank, a
        # retrained one at the same path is refused
        meta=dict(checkpoint=parts['weights'], features=parts['features'],
                  cam_dir=parts['cams_read']),
        progress=True)
    logger.info(f'feature bank {bank_file}: {len(bank)} vectors of '
                f'{bank.num_images} images, D = {bank.channels} '
                f'({time.time() - start:.1f} s); read from '
                f'{refiner.place_bank(device)} memory')

    # 2. refine this rank's targets
    mine = list(DefaultSampler(target_set, shuffle=False, round_up=False))
    todo = [
        i for i in mine
        if not out_store.exists(target_set.get_data_info(i)['img_path'])
    ]
    logger.info(f'refining {len(todo)} targets ({len(mine) - len(todo)} of '
                f'this rank done before)')
    start = time.time()
    bar = ProgressBar(len(todo)) if rank == 0 and todo else None
    for data in _image_loader(target_set, todo, workers):
        feat, sample = forward_features(model, data)
        img_path = sample.metainfo['img_path']
        label = sample.gt_img_label.float()
        cam = cam_store.load(img_path, num_classes,
                             sample.metainfo['ori_shape'])
        refined = refiner.refine(cam.to(device), feat, label.to(device),
                                 cam_name(img_path))
        out_store.save(img_path, refined.cpu(), label)
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    missing = {}
    for counts in all_gather_object(dict(refiner.missing_refs)):
        for cls, count in counts.items():
            missing[cls] = missing.get(cls, 0) + count
    logger.info(f'refined {len(todo)} targets in {time.time() - start:.1f} '
                f's; targets per class left unchanged for want of '
                f'references: {missing or "none"}')
    barrier()
    if rank == 0:
        finish_output_dir(out_dir, key, parts)
    results = dict(
        num_targets=len(target_set), refined=len(todo),
        missing_refs=missing, num_refs=refiner.num_refs,
        bg_score=refiner.bg_score)

    # 3. score
    if score:
        miou = score_cam_stores(
            target_set, mine, dict(refined=out_store, unrefined=cam_store),
            refiner.bg_score, logger)
        results.update(mIoU=miou['refined'],
                       mIoU_unrefined=miou['unrefined'])
        logger.info(f'pseudo-mask mIoU (bg {refiner.bg_score}): refined '
                    f'{results["mIoU"]:.2f}, stage-1 '
                    f'{results["mIoU_unrefined"]:.2f}')
    return results
