from .cam_threshold_sweep_metric import CAMThresholdSweepMetric, sweep_confusion

__all__ = ['CAMThresholdSweepMetric', 'sweep_confusion']
