from .cycle_consistency_head import CycleConsistencyHead

__all__ = ['CycleConsistencyHead']
