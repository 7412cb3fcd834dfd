"""Post-processing modules applied to predicted scores (random walk)."""
from .affinity_rw_postprocessor import AffinityRWPostprocessor

__all__ = ['AffinityRWPostprocessor']
