"""Stage 5: stock mmseg segmentors trained on pseudo masks."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules
from PIL import Image

# tests/ema_checks.py
from ema_checks import assert_batchnorm_statistics_averaged

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VOC = 'configs/deeplabv3plus_r101-d8_voc-pseudo.py'
SYNTH = 'configs/fcn_r18-d8_synthvoc-pseudo.py'


def load(config):
    return Config.fromfile(osp.join(REPO, config))


@pytest.mark.parametrize('config, default_masks', [
    (VOC, 'work_dirs/pseudo_masks'),
    (SYNTH, 'work_dirs/pipeline/pseudo_masks/rw_cyc'),
])
def test_trains_on_pseudo_masks_and_scores_real_ones(config, default_masks):
    cfg = load(config)
    train = cfg.train_dataloader.dataset
    assert train.type == 'PascalVOCDataset'
    assert train.ann_file == 'ImageSets/Segmentation/train_aug.txt'
    # absolute, so that mmengine does not read it under data_root
    assert osp.normpath(train.data_prefix.seg_map_path) == osp.join(
        REPO, default_masks)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.data_prefix.seg_map_path == 'SegmentationClass'
        assert loader.dataset.ann_file == 'ImageSets/Segmentation/val.txt'
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert cfg.default_scope == 'mmseg'


def test_voc_config_is_mmseg_deeplabv3plus_r101():
    register_all_modules()
    cfg = load(VOC)
    assert cfg.model.backbone.depth == 101
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.decode_head.num_classes == 21
    assert cfg.train_cfg.max_iters == 20000
    cfg.model.pretrained = None  # no download for the check
    model = MODELS.build(cfg.model)
    assert type(model.decode_head).__name__ == 'DepthwiseSeparableASPPHead'


def test_synthvoc_config_trains_and_tests_through_the_tools(
        tmp_path, tiny_synthvoc, run_tool, python):
    """A few iterations on the tiny dataset, its masks standing in as the
    pseudo masks, then tools/test.py on the checkpoint."""
    work = str(tmp_path / 'work')
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [
        f'train_dataloader.dataset.data_prefix.seg_map_path='
        f'{osp.join(tiny_synthvoc, "SegmentationClassAug")}',
        'train_dataloader.batch_size=4',
        'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
        'default_hooks.checkpoint.interval=3',
        # EMAHook refuses to begin after the last iteration
        'custom_hooks.0.begin_iter=1',
        'default_hooks.logger.interval=1',
    ] + [f'{loader}.dataset.data_root={tiny_synthvoc}' for loader in loaders
         ] + [f'{loader}.num_workers=0' for loader in loaders
              ] + [f'{loader}.persistent_workers=False' for loader in loaders]
    run_tool(python, 'tools/train.py', SYNTH, '--work-dir', work,
             '--cfg-options', *options)
    checkpoint = osp.join(work, 'iter_3.pth')
    assert osp.isfile(checkpoint)
    # EMAHook(update_buffers=True): the checkpoint's BatchNorm statistics
    # are averaged with the weights, not the live net's (which mmengine's
    # default would copy, and which the swap leaves in ema_state_dict)
    assert_batchnorm_statistics_averaged(
        torch.load(checkpoint, map_location='cpu', weights_only=False))
    metrics = str(tmp_path / 'metrics.json')
    single, tta = tmp_path / 'single', tmp_path / 'tta'
    run_tool(python, 'tools/test.py', SYNTH, checkpoint, '--work-dir', work,
             '--metrics-json', metrics, '--pseudo-mask-dir', str(single),
             '--cfg-options', *options)
    with open(metrics) as f:
        result = json.load(f)
    assert 0 <= result['mIoU'] <= 100
    # --tta (mmseg's multi-scale + flip test): the predictions written are
    # the argmax of the softmax averaged over the 12 passes, computed here
    # from the checkpoint with the plain model
    run_tool(python, 'tools/test.py', SYNTH, checkpoint, '--tta',
             '--work-dir', work, '--pseudo-mask-dir', str(tta),
             '--metrics-json', metrics, '--cfg-options', *options)
    with open(metrics) as f:
        assert 0 <= json.load(f)['mIoU'] <= 100
    expected = averaged_predictions(checkpoint, tiny_synthvoc,
                                    [0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    agree, differ_from_single = [], []
    for name, prediction in expected.items():
        written = np.asarray(Image.open(tta / f'{name}.png'))
        agree.append((written == prediction).mean())
        differ_from_single.append(
            (written != np.asarray(Image.open(single / f'{name}.png'))).mean())
    # equal but for float near-ties of two classes' averaged probabilities
    assert np.mean(agree) > 0.995, agree
    assert np.mean(differ_from_single) > 0.01  # the passes did change it


def averaged_predictions(checkpoint, data_root, ratios):
    """Reference multi-scale + flip test of the tiny val set: per image and
    ratio, bilinear rescale (mmcv, as mmcv's Resize), normalise, the
    model's logits at the input size, flipped back, resized to the image
    bilinearly, softmax; averaged over passes, argmax."""
    import mmcv
    import torch.nn.functional as F

    import mmcyc  # noqa: F401
    from mmcyc.datasets.voc_image_label import read_image_names
    register_all_modules()
    cfg = load(SYNTH)
    model = MODELS.build(cfg.model)
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    model.load_state_dict(state['state_dict'])
    model.eval()
    mean = torch.tensor(cfg.model.data_preprocessor.mean).view(3, 1, 1)
    std = torch.tensor(cfg.model.data_preprocessor.std).view(3, 1, 1)
    predictions = {}
    for name in read_image_names(
            osp.join(data_root, 'ImageSets', 'Segmentation', 'val.txt')):
        image = mmcv.imread(osp.join(data_root, 'JPEGImages',
                                     f'{name}.jpg'))  # BGR
        height, width = image.shape[:2]
        total = 0
        for ratio in ratios:
            scaled = mmcv.imrescale(image, ratio, interpolation='bilinear')
            for flip in (False, True):
                view = scaled[:, ::-1] if flip else scaled
                x = torch.from_numpy(view[..., ::-1].copy()).permute(
                    2, 0, 1).float()  # RGB
                x = ((x - mean) / std)[None]
                meta = dict(img_shape=x.shape[2:], pad_shape=x.shape[2:],
                            ori_shape=(height, width))
                with torch.no_grad():
                    logits = model.encode_decode(x, [meta])  # (1, 21, h, w)
                if flip:
                    logits = logits.flip(-1)
                logits = F.interpolate(logits, size=(height, width),
                                       mode='bilinear', align_corners=False)
                total = total + logits.softmax(dim=1)
        predictions[name] = total[0].argmax(0).numpy()
    return predictions
