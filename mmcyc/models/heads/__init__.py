from .affinity_embed_head import AffinityEmbedHead
from .cycle_consistency_head import CycleConsistencyHead
from .fast_accuracy_fcn_head import FastAccuracyFCNHead

__all__ = ['AffinityEmbedHead', 'CycleConsistencyHead', 'FastAccuracyFCNHead']
