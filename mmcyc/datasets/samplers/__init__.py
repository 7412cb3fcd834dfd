"""Data samplers registered in ``mmseg.registry.DATA_SAMPLERS``."""
from .pair_sampler import PairSampler

__all__ = ['PairSampler']
