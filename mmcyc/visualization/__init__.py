from .curve_overlay import draw_overlaid_curves
from .local_image import add_local_image, figure_to_rgb
from .similarity_maps import draw_similarity_maps, overlay_heatmap
from .training_curves import draw_curves, read_scalars

__all__ = [
    'draw_curves', 'draw_overlaid_curves', 'read_scalars',
    'draw_similarity_maps', 'overlay_heatmap', 'add_local_image',
    'figure_to_rgb'
]
