# Copyright (c) mmcyc contributors. All rights reserved.
"""Testing a checkpoint as a library step: a test config with the per-image
writers (CAMs, pseudo masks), the output folders' manifests, the strict
weight load, then mmengine's test loop (``tools/test.py`` parses the
arguments and calls :func:`run_checkpoint_test`)."""
import copy
import io
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import Runner

from mmcyc.utils.manifest import (bytes_digest, digest, finish_output_dir,
                                  folder_key, guard_output_dir)
from mmcyc.utils.state_dict_check import check_state_dict, unwrap_state_dict


def load_checked(runner: Runner, checkpoint: str, blob: bytes) -> None:
    """Load weights, failing on keys or shapes that do not match the model.

    mmengine loads with ``strict=False`` and only logs mismatches (a tensor
    of another shape is skipped, leaving the random initialisation); testing
    a checkpoint of another model must fail instead. The file is read once,
    checked, and its state dict loaded strictly.
    """
    loaded = torch.load(io.BytesIO(blob), map_location='cpu',
                        weights_only=False)
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    if isinstance(model, BaseTTAModel):  # tested with --tta
        model = model.module
    state_dict = unwrap_state_dict(loaded, checkpoint)
    check_state_dict(model, state_dict, f'checkpoint {checkpoint}',
                     f'{type(model).__name__} of config {runner.cfg.filename}')
    # as Runner.load_checkpoint: hooks see the checkpoint, then the weights
    runner.call_hook('after_load_checkpoint', checkpoint=loaded)
    model.load_state_dict(state_dict, strict=False)
    runner.logger.info(f'Load checkpoint from {checkpoint}')


def output_parts(cfg: Config, checkpoint_digest: str) -> dict:
    """What the per-image outputs of this test run are made from.

    The checkpoint's bytes, the model config (less where it writes), the
    test pipeline (less the folders it reads) and data root, and the
    manifest key of the CAM folder the test pipeline reads
    (``LoadCAMFromFile``, e.g. the CAMs AffinityNet walks).
    """
    model_cfg = copy.deepcopy(cfg.model.to_dict())
    test_cfg = dict(model_cfg.pop('test_cfg', None) or {})
    test_cfg.pop('out_dir', None)
    dataset = cfg.test_dataloader.dataset
    pipeline = copy.deepcopy([dict(step) for step in
                              dataset.get('pipeline') or ()])
    cams_read = []
    pipeline = [step for step in pipeline  # not the outputs read back
                if step.get('key') != 'written_cam']
    for step in pipeline:
        if step.get('type') == 'LoadCAMFromFile':
            cam_dir = step.pop('cam_dir')
            cams_read.append(folder_key(cam_dir) or osp.abspath(cam_dir))
        elif step.get('type') == 'LoadPseudoMask':
            step.pop('mask_dir', None)  # the output folder itself
    return dict(
        checkpoint=checkpoint_digest,
        model=digest(model_cfg),
        test_cfg=test_cfg,
        test_pipeline=digest(pipeline),
        data_root=dataset.get('data_root'),
        cams_read=cams_read[0] if len(cams_read) == 1 else
        (cams_read or None))


def guard_outputs(cfg: Config,
                  checkpoint_digest: str,
                  cam_dir: Optional[str] = None,
                  pseudo_mask_dir: Optional[str] = None,
                  overwrite: bool = False) -> list:
    """Check (and claim) the output folders before anything is written.

    Rank 0 only; returns ``[(folder, key, parts), ...]`` to mark done.
    """
    folders = [(cam_dir, 'CAMs'), (pseudo_mask_dir, 'pseudo masks')]
    folders = [(f, what) for f, what in folders if f is not None]
    if not folders or int(os.environ.get('RANK', 0)) != 0:
        return []
    if overwrite and int(os.environ.get('WORLD_SIZE', 1)) > 1:
        raise ValueError('overwrite empties the output folders: run it '
                         'with one process, or delete them first')
    parts = output_parts(cfg, checkpoint_digest)
    return [(folder,
             guard_output_dir(folder, parts, what, overwrite=overwrite),
             parts) for folder, what in folders]


def add_cam_writing(cfg: Config, cam_dir: str) -> None:
    """Write the CAMs to ``cam_dir`` and read back the ones there.

    ``CAMWriterHook`` writes each CAM the model computes; a
    ``LoadCAMFromFile(key='written_cam', skip_missing=True)`` right after
    the image is loaded brings the ones already written back with their
    samples, which the model returns instead of computing them again.
    """
    pipeline = cfg.test_dataloader.dataset.pipeline
    num_classes = cfg.model.get('num_classes', 20)
    pipeline.insert(1, dict(type='LoadCAMFromFile', cam_dir=cam_dir,
                            num_classes=num_classes, skip_missing=True,
                            key='written_cam'))
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='CAMWriterHook', out_dir=cam_dir, loops=('test', ))
    ]


def drop_ema_hooks(cfg: Config) -> None:
    """Remove ``EMAHook`` from a config's custom hooks before testing.

    A checkpoint saved under ``EMAHook`` already holds the averaged weights
    in its ``state_dict`` (the hook swaps them in before saving), which is
    what is tested here; the hook itself would need the training run's
    ``before_run`` to exist.
    """
    hooks = cfg.get('custom_hooks', None) or []
    cfg.custom_hooks = [h for h in hooks if h.get('type') != 'EMAHook']


def add_test_time_augmentation(cfg: Config) -> None:
    """Test with the config's ``tta_pipeline`` and ``tta_model``, in place.

    What mmseg's ``tools/test.py --tta`` does: the test dataset's pipeline
    becomes ``tta_pipeline`` (a ``TestTimeAug`` giving every image at each
    scale, unflipped and flipped) and the model is wrapped in ``tta_model``
    (``SegTTAModel``: the softmax of every pass, resized back to the image,
    averaged). The checkpoint is still checked against and loaded into the
    wrapped model.

    Args:
        cfg (Config): The test config.

    Raises:
        ValueError: Naming the config when it has no ``tta_pipeline`` or
            ``tta_model`` (mmseg configs inherit both from their dataset
            and runtime bases; CAM models have none).
    """
    missing = [key for key in ('tta_pipeline', 'tta_model')
               if cfg.get(key, None) is None]
    if missing:
        raise ValueError(f'{cfg.filename} has no {" and no ".join(missing)}:'
                         ' test-time augmentation needs both')
    cfg.test_dataloader.dataset.pipeline = copy.deepcopy(cfg.tta_pipeline)
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def add_test_outputs(cfg: Config,
                     cam_dir: Optional[str] = None,
                     split: Optional[str] = None,
                     input_cam_dir: Optional[str] = None,
                     pseudo_mask_dir: Optional[str] = None) -> None:
    """Set a config's test run up, in place.

    Args:
        cfg (Config): The test config.
        cam_dir (str, optional): Write one CAM file per image there
            (``CAMWriterHook``; the ones there are read back).
        split (str, optional): The test dataset's ann file, relative to
            its data_root.
        input_cam_dir (str, optional): The CAM folder the test pipeline's
            ``LoadCAMFromFile`` reads.
        pseudo_mask_dir (str, optional): Write every prediction as a VOC
            palette PNG there (``PseudoMaskWriterHook``; read back where the
            pipeline has a ``LoadPseudoMask``).

    Raises:
        ValueError: ``input_cam_dir`` for a pipeline without
            ``LoadCAMFromFile``, naming the config.
    """
    if cam_dir is not None:
        add_cam_writing(cfg, cam_dir)
    if split is not None:
        cfg.test_dataloader.dataset.ann_file = split
    if input_cam_dir is not None:
        steps = [step for step in cfg.test_dataloader.dataset.get(
            'pipeline') or () if step.get('type') == 'LoadCAMFromFile']
        if not steps:
            raise ValueError(f'input_cam_dir: the test pipeline of '
                             f'{cfg.filename} has no LoadCAMFromFile')
        for step in steps:
            step['cam_dir'] = input_cam_dir
    if pseudo_mask_dir is not None:
        # masks already written are read back (resumable) where the test
        # pipeline can (LoadPseudoMask: AffinityNet's walk)
        for step in cfg.test_dataloader.dataset.get('pipeline') or ():
            if step.get('type') == 'LoadPseudoMask':
                step['mask_dir'] = pseudo_mask_dir
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='PseudoMaskWriterHook', out_dir=pseudo_mask_dir,
                 loops=('test', ))
        ]


def run_checkpoint_test(cfg: Config,
                    checkpoint: str,
                    cam_dir: Optional[str] = None,
                    pseudo_mask_dir: Optional[str] = None,
                    overwrite: bool = False) -> dict:
    """Test a checkpoint with a config set up by :func:`add_test_outputs`.

    The checkpoint is read once: its digest names the outputs (the folders
    are guarded by manifests before anything is written), its tensors are
    loaded strictly. ``EMAHook`` is dropped (the checkpoint holds the
    averaged weights) and cudnn autotuning is off (every test image has its
    own shape).

    Args:
        cfg (Config): The test config (``work_dir`` and ``launcher`` set).
        checkpoint (str): The checkpoint file.
        cam_dir (str, optional): The CAM folder written (guarded).
        pseudo_mask_dir (str, optional): The mask folder written (guarded).
        overwrite (bool): Empty those folders when they hold outputs of
            other inputs. Defaults to False.

    Returns:
        dict: The test loop's metrics.
    """
    cfg.load_from = None  # loaded below, checked against the model
    drop_ema_hooks(cfg)
    # every test image has its own shape (multi-scale CAM inference, the
    # random walk, whole-image segmentation): with cudnn.benchmark each new
    # shape is autotuned afresh, slower than the default algorithms.
    # Trainings on fixed crops keep default_runtime's cudnn_benchmark=True
    cfg.env_cfg = dict(cfg.get('env_cfg') or {}, cudnn_benchmark=False)
    torch.backends.cudnn.benchmark = False
    with open(checkpoint, 'rb') as f:
        blob = f.read()
    guarded = guard_outputs(cfg, bytes_digest(blob), cam_dir,
                            pseudo_mask_dir, overwrite)
    runner = Runner.from_cfg(cfg)
    load_checked(runner, checkpoint, blob)
    del blob
    metrics = runner.test()
    for folder, key, parts in guarded:
        finish_output_dir(folder, key, parts)
    return metrics
