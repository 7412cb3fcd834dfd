"""Data transforms registered in ``mmseg.registry.TRANSFORMS``."""
from .formatting import PackImageLabelInputs
from .loading import LoadCheckedAnnotations, LoadCheckedImageFromFile

__all__ = [
    'LoadCheckedImageFromFile', 'LoadCheckedAnnotations',
    'PackImageLabelInputs'
]
