import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.structures import SegDataSample

from mmcyc.evaluation import CAMThresholdSweepMetric
from mmcyc.models.utils import cam_to_mask

CLASSES = ('background', 'a', 'b', 'c')


def make_samples(seed=0, n=4):
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        cam = torch.rand(3, 6, 7, generator=gen)
        gt = torch.randint(0, 4, (1, 6, 7), generator=gen)
        gt[0, 0, :3] = 255
        sample = SegDataSample()
        sample.pred_cam = PixelData(data=cam)
        sample.gt_sem_seg = PixelData(data=gt)
        samples.append(sample)
    return samples


@pytest.mark.parametrize('bg', [0.2, 0.55])
def test_sweep_matches_iou_metric_at_each_score(bg):
    samples = make_samples()
    sweep = CAMThresholdSweepMetric(bg_scores=(0.2, 0.55))
    sweep.dataset_meta = dict(classes=CLASSES)
    sweep.process({}, [s.to_dict() for s in samples])
    got = sweep.compute_metrics(sweep.results)

    iou = IoUMetric(iou_metrics=['mIoU'])
    iou.dataset_meta = dict(classes=CLASSES)
    for s in samples:
        s.pred_sem_seg = PixelData(data=cam_to_mask(s.pred_cam.data[None], bg))
    iou.process({}, [s.to_dict() for s in samples])
    expected = iou.compute_metrics(iou.results)['mIoU']
    assert got[f'mIoU@{bg:.2f}'] == pytest.approx(expected, abs=0.011)


def test_best_score_is_argmax():
    samples = make_samples(seed=3)
    sweep = CAMThresholdSweepMetric(bg_scores=(0.1, 0.3, 0.5, 0.7))
    sweep.dataset_meta = dict(classes=CLASSES)
    sweep.process({}, [s.to_dict() for s in samples])
    got = sweep.compute_metrics(sweep.results)
    curve = [got[f'mIoU@{s:.2f}'] for s in (0.1, 0.3, 0.5, 0.7)]
    assert got['best_mIoU'] == max(curve)
    assert got['best_bg_score'] == (0.1, 0.3, 0.5, 0.7)[int(np.argmax(curve))]
    with pytest.raises(ValueError, match='bg_scores'):
        CAMThresholdSweepMetric(bg_scores=())
