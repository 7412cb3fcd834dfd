from .affinity_embed_head import AffinityEmbedHead
from .cycle_consistency_head import CycleConsistencyHead

__all__ = ['AffinityEmbedHead', 'CycleConsistencyHead']
