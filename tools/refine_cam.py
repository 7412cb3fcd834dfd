# Copyright (c) mmcyc contributors. All rights reserved.
"""Stage 3: refine stage-1 CAMs with a trained CyCSNet (Eq. 14, Alg. 2).

    python tools/refine_cam.py CONFIG CHECKPOINT --cam-dir STAGE1_CAMS \\
        --out-dir OUT [--split ImageSets/Segmentation/train.txt] \\
        [--bank-split ImageSets/Segmentation/train_aug.txt] [--num-refs N] \\
        [--metrics-json M] [--cfg-options ...] [--launcher pytorch]

CONFIG is a CyCSNet config (e.g. ``configs/cyc_resnet38_voc.py``) holding a
``refiner=dict(type='CAMRefiner', ...)`` entry, CHECKPOINT its trained
weights (they include the frozen classifier's, so the classifier checkpoint
named in the config is not read). ``CHECKPOINT`` ``-`` with
``--init-from-classifier CAM_CKPT`` refines with F = the stage-1
classifier's backbone, i.e. F before stage 2 (Eq. 14 without CyCSNet
training, an ablation). The images and labels come from the
config's training dataset (``train_dataloader.dataset``, unwrapped to the
image-label dataset), with the split files given here, relative to its
``data_root``.

1. F's features of every image of ``--bank-split`` (image at scale 1,
   normalised by the config's data preprocessor) and their stage-1 CAMs from
   ``--cam-dir`` make the feature bank, cached as ``OUT/feature_bank.pth``
   (resumable; in a distributed run every rank builds a share of it).
2. Every target of ``--split`` is refined (rank r of W takes targets r,
   r + W, ...) and written to ``OUT/<name>.npz`` in the CAM format of
   ``mmcyc.utils.cam_io``; targets whose file exists are skipped, so a rerun
   resumes. The refined CAMs are the ``--cam-dir`` of the next stage. Values
   may exceed 1 (``epsilon W^f`` <= epsilon).
3. With ``--metrics-json``, the refined and the stage-1 CAMs of the targets
   are scored as pseudo masks (background score ``refiner.bg_score``, 0.2)
   with mmseg's IoUMetric: ``{"mIoU": ..., "mIoU_unrefined": ...}``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.dist import (all_gather_object, barrier, get_dist_info,
                           init_dist, is_main_process)
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from mmseg.evaluation import IoUMetric
from mmseg.registry import MODELS
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmcyc.apis import (add_cycsnet_weight_args,  # noqa: E402
                        forward_features, load_cycsnet,
                        parsed_cycsnet_weights)
from mmcyc.datasets.image_label_split import (  # noqa: E402
    build_image_label_split, image_label_dataset_cfg)
from mmcyc.datasets.transforms import LoadCheckedAnnotations  # noqa: E402
from mmcyc.engine import (setup_cpu_distributed,  # noqa: E402
                          teardown_distributed)
from mmcyc.models.refiners import CAMRefiner  # noqa: E402
from mmcyc.models.utils.cam import cam_to_mask  # noqa: E402
from mmcyc.utils import CAMStore, atomic_open, cam_name  # noqa: E402
from mmcyc.utils.manifest import (digest, file_digest,  # noqa: E402
                                  finish_output_dir, folder_key,
                                  guard_output_dir)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Refine stage-1 CAMs with a trained CyCSNet (stage 3)')
    add_cycsnet_weight_args(
        parser, "with CHECKPOINT '-': F = the stage-1 classifier's backbone "
        '(F before stage 2): Eq. 14 without CyCSNet training, an ablation')
    parser.add_argument('--out-dir', required=True,
                        help='refined CAMs and the feature bank go here')
    parser.add_argument(
        '--split', default='ImageSets/Segmentation/train.txt',
        help='targets to refine, relative to data_root')
    parser.add_argument(
        '--bank-split', default='ImageSets/Segmentation/train_aug.txt',
        help='images the references are sampled from (the training set), '
        'relative to data_root; each needs its stage-1 CAM in --cam-dir')
    parser.add_argument('--num-refs', type=int,
                        help='N, overrides refiner.num_refs of the config')
    parser.add_argument('--bank-file',
                        help='feature bank cache (default '
                        'OUT/feature_bank.pth)')
    parser.add_argument('--metrics-json',
                        help='score refined and stage-1 CAMs, write here')
    parser.add_argument('--workers', type=int, default=2,
                        help='image loading processes')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='empty OUT first when it holds refined CAMs made by other '
        'weights, settings, stage-1 CAMs or data (without it that is an '
        'error: they would be read back as if made now)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    args.weights = parsed_cycsnet_weights(parser, args)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def feature_loader(dataset, indices, workers):
    return DataLoader(
        Subset(dataset, list(indices)), batch_size=1, shuffle=False,
        num_workers=workers, collate_fn=pseudo_collate)


def score(dataset, indices, stores, bg_score, logger):
    """mIoU of each store's CAMs of ``indices`` as pseudo masks."""
    load_gt = LoadCheckedAnnotations(
        num_classes=len(dataset.metainfo['classes']))
    metrics = {}
    for key in stores:
        metrics[key] = IoUMetric(iou_metrics=['mIoU'], prefix=key)
        metrics[key].dataset_meta = dataset.metainfo
    num_classes = len(dataset.metainfo['classes']) - 1
    for index in indices:
        info = dataset.get_data_info(index)
        gt = torch.from_numpy(load_gt(dict(info))['gt_seg_map'].copy())
        for key, store in stores.items():
            cam = store.load(info['img_path'], num_classes)
            mask = cam_to_mask(cam[None], bg_score)  # (1, H, W)
            metrics[key].process({}, [
                dict(pred_sem_seg=dict(data=mask), gt_sem_seg=dict(data=gt))
            ])
    results = {}
    for key, metric in metrics.items():
        logger.info(f'scoring the {key} CAMs as pseudo masks')
        results[key] = metric.evaluate(len(dataset))[f'{key}/mIoU']
    return results


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmcyc  # noqa: F401  (registers datasets, transforms, models)
    if args.launcher != 'none' and not setup_cpu_distributed(
            cfg, args.launcher):
        init_dist(args.launcher)
    rank, world_size = get_dist_info()
    device = torch.device('cuda', torch.cuda.current_device()) \
        if torch.cuda.is_available() else torch.device('cpu')
    # every image goes through F at its own size: cudnn.benchmark would
    # autotune the convolutions afresh for each shape (slower, not faster)
    torch.backends.cudnn.benchmark = False
    dataset_cfg = image_label_dataset_cfg(cfg)
    refiner_cfg = dict(cfg.get('refiner') or dict(type='CAMRefiner'))
    if args.num_refs is not None:
        refiner_cfg['num_refs'] = args.num_refs
    # what the refined CAMs are made of: OUT must hold only such files
    weights = args.init_from_classifier or args.checkpoint
    parts = dict(
        weights=file_digest(weights),
        features='classifier' if args.init_from_classifier else 'cyc',
        model=digest(cfg.model.to_dict()),
        refiner=refiner_cfg,
        bank_split=args.bank_split,
        cams_read=folder_key(args.cam_dir) or osp.abspath(args.cam_dir),
        data_root=dataset_cfg.get('data_root'))
    if rank == 0:
        if args.overwrite and world_size > 1:
            raise SystemExit('--overwrite empties OUT: run it with one '
                             'process, or delete OUT first')
        key = guard_output_dir(args.out_dir, parts, 'refined CAMs',
                               overwrite=args.overwrite)
    barrier()
    os.makedirs(args.out_dir, exist_ok=True)
    logger = MMLogger.get_instance(
        'mmcyc_refine_cam',
        log_file=osp.join(args.out_dir,
                          f'refine_cam_{time.strftime("%Y%m%d_%H%M%S")}.log'))

    refiner = MODELS.build(refiner_cfg)
    if not isinstance(refiner, CAMRefiner):
        raise ValueError(f'refiner must be a CAMRefiner, got {refiner_cfg}')
    model = load_cycsnet(cfg.model, device=device, **args.weights)
    bank_set = build_image_label_split(dataset_cfg, args.bank_split)
    target_set = build_image_label_split(dataset_cfg, args.split)
    num_classes = len(bank_set.get_data_info(0)['img_label'])
    cam_store, out_store = CAMStore(args.cam_dir), CAMStore(args.out_dir)
    logger.info(f'refiner {refiner_cfg}; {len(bank_set)} bank images '
                f'({args.bank_split}), {len(target_set)} targets '
                f'({args.split}), {world_size} process(es) on {device}')

    # 1. the feature bank
    infos = [bank_set.get_data_info(i) for i in range(len(bank_set))]
    names = [cam_name(info['img_path']) for info in infos]
    labels = torch.stack([torch.as_tensor(i['img_label']) for i in infos])

    def features(indices):
        for data in feature_loader(bank_set, indices, args.workers):
            yield forward_features(model, data)[0]

    bank_file = args.bank_file or osp.join(args.out_dir, 'feature_bank.pth')
    start = time.time()
    bank = refiner.build_bank(
        features, names, labels, cam_store, cache_file=bank_file,
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
    mine = list(range(rank, len(target_set), world_size))
    todo = [
        i for i in mine
        if not out_store.exists(target_set.get_data_info(i)['img_path'])
    ]
    logger.info(f'refining {len(todo)} targets ({len(mine) - len(todo)} of '
                f'this rank done before)')
    start = time.time()
    bar = ProgressBar(len(todo)) if rank == 0 and todo else None
    for data in feature_loader(target_set, todo, args.workers):
        feat, sample = forward_features(model, data)
        img_path = sample.metainfo['img_path']
        label = sample.gt_img_label.float()
        cam = cam_store.load(img_path, num_classes)
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
        finish_output_dir(args.out_dir, key, parts)

    # 3. score
    if args.metrics_json:
        miou = score(target_set, mine, dict(refined=out_store,
                                            unrefined=cam_store),
                     refiner.bg_score, logger)
        results = dict(
            mIoU=float(miou['refined']),
            mIoU_unrefined=float(miou['unrefined']),
            num_targets=len(target_set),
            num_refs=refiner.num_refs,
            bg_score=refiner.bg_score)
        logger.info(f'pseudo-mask mIoU (bg {refiner.bg_score}): refined '
                    f'{results["mIoU"]:.2f}, stage-1 '
                    f'{results["mIoU_unrefined"]:.2f}')
        if is_main_process():
            with atomic_open(args.metrics_json, 'w') as f:
                json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
    teardown_distributed()
