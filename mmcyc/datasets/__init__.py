"""Datasets and transforms, registered in mmseg's DATASETS and TRANSFORMS."""
from .cls_labels import (VOC_CLASSES, labels_from_mask, load_cls_labels,
                         save_cls_labels, voc_palette)
from .synthvoc import (SynthSample, decode_part_map, is_complete,
                       load_part_map, make_synthvoc, salient_from_part_map,
                       synth_sample)
from .transforms import (LoadCAMFromFile, LoadCheckedAnnotations,
                         LoadCheckedImageFromFile, PackImageLabelInputs)
from .voc_image_label import VOCImageLabelDataset, read_image_names

__all__ = [
    'VOC_CLASSES', 'voc_palette', 'load_cls_labels', 'save_cls_labels',
    'labels_from_mask', 'make_synthvoc', 'is_complete', 'synth_sample',
    'SynthSample', 'decode_part_map', 'load_part_map',
    'salient_from_part_map',
    'VOCImageLabelDataset', 'read_image_names',
    'LoadCheckedImageFromFile', 'LoadCheckedAnnotations',
    'PackImageLabelInputs', 'LoadCAMFromFile'
]
from .pair_collate import pair_collate  # noqa: E402
from .paired_voc import PairedVOCDataset  # noqa: E402
from .samplers import PairSampler  # noqa: E402

__all__ += ['PairedVOCDataset', 'PairSampler', 'pair_collate']
