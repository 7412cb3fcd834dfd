from .training_curves import draw_curves, read_scalars

__all__ = ['draw_curves', 'read_scalars']
