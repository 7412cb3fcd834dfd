"""Data transforms registered in ``mmseg.registry.TRANSFORMS``."""
from .formatting import PackImageLabelInputs
from .loading import (LoadCAMFromFile, LoadCheckedAnnotations,
                      LoadCheckedImageFromFile)

__all__ = [
    'LoadCheckedImageFromFile', 'LoadCheckedAnnotations',
    'PackImageLabelInputs', 'LoadCAMFromFile'
]
from .load_affinity_scores import LoadAffinityScores  # noqa: E402
from .load_pseudo_mask import LoadPseudoMask  # noqa: E402
from .pack_affinity_inputs import PackAffinityInputs  # noqa: E402

__all__ += ['LoadAffinityScores', 'PackAffinityInputs', 'LoadPseudoMask']
