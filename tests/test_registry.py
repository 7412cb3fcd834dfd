"""``import mmcyc`` registers every component in mmseg's registries."""
import pytest
from mmengine.registry import FUNCTIONS
from mmseg.registry import (DATA_SAMPLERS, DATASETS, HOOKS, METRICS, MODELS,
                            TASK_UTILS, TRANSFORMS)

import mmcyc

EXPECTED = [
    (MODELS, 'ResNet38', 'mmcyc.models.backbones.resnet38'),
    (MODELS, 'CAMClassifier', 'mmcyc.models.classifiers.cam_classifier'),
    (MODELS, 'MultiLabelSoftMarginLoss',
     'mmcyc.models.losses.multilabel_soft_margin_loss'),
    (MODELS, 'CycleConsistencyHead',
     'mmcyc.models.heads.cycle_consistency_head'),
    (MODELS, 'CyCSNet', 'mmcyc.models.segmentors.cycsnet'),
    (DATASETS, 'VOCImageLabelDataset', 'mmcyc.datasets.voc_image_label'),
    (DATASETS, 'PairedVOCDataset', 'mmcyc.datasets.paired_voc'),
    (DATA_SAMPLERS, 'PairSampler', 'mmcyc.datasets.samplers.pair_sampler'),
    (TRANSFORMS, 'LoadCheckedImageFromFile',
     'mmcyc.datasets.transforms.loading'),
    (TRANSFORMS, 'LoadCheckedAnnotations', 'mmcyc.datasets.transforms.loading'),
    (TRANSFORMS, 'PackImageLabelInputs',
     'mmcyc.datasets.transforms.formatting'),
    (METRICS, 'CAMThresholdSweepMetric',
     'mmcyc.evaluation.metrics.cam_threshold_sweep_metric'),
    (HOOKS, 'DCFSHook', 'mmcyc.engine.hooks.dcfs_hook'),
    (HOOKS, 'CAMWriterHook', 'mmcyc.engine.hooks.cam_writer_hook'),
    (HOOKS, 'PseudoMaskWriterHook',
     'mmcyc.engine.hooks.pseudo_mask_writer_hook'),
    (MODELS, 'CAMRefiner', 'mmcyc.models.refiners.cam_refiner'),
    (MODELS, 'AffinityNet', 'mmcyc.models.segmentors.affinity_net'),
    (MODELS, 'AffinityEmbedHead', 'mmcyc.models.heads.affinity_embed_head'),
    (MODELS, 'AffinityRWPostprocessor',
     'mmcyc.models.postprocessors.affinity_rw_postprocessor'),
    (TRANSFORMS, 'LoadCAMFromFile', 'mmcyc.datasets.transforms.loading'),
    (TRANSFORMS, 'LoadAffinityScores',
     'mmcyc.datasets.transforms.load_affinity_scores'),
    (TRANSFORMS, 'PackAffinityInputs',
     'mmcyc.datasets.transforms.pack_affinity_inputs'),
    (MODELS, 'LPCAM', 'mmcyc.models.classifiers.lpcam'),
    (MODELS, 'SSENetClassifier', 'mmcyc.models.classifiers.ssenet_classifier'),
    (MODELS, 'ScaleEquivarianceLoss',
     'mmcyc.models.losses.scale_equivariance_loss'),
    (MODELS, 'VGG16d', 'mmcyc.models.backbones.vgg16d'),
    (TRANSFORMS, 'LoadPseudoMask',
     'mmcyc.datasets.transforms.load_pseudo_mask'),
    (TASK_UTILS, 'DenseCRF', 'mmcyc.models.utils.dense_crf'),
]


@pytest.mark.parametrize('registry,name,module', EXPECTED,
                         ids=[name for _, name, _ in EXPECTED])
def test_registered_in_mmseg_registries(registry, name, module):
    assert registry.scope == 'mmseg'
    cls = registry.get(name)
    assert cls is not None, f'{name} is not in mmseg {registry.name}'
    assert cls.__module__ == module


def test_pair_collate_is_a_registered_function():
    assert FUNCTIONS.get('pair_collate') is mmcyc.datasets.pair_collate


def test_stock_components_still_resolve():
    # our registrations live next to mmseg's own, not instead of them
    assert MODELS.get('EncoderDecoder').__module__.startswith('mmseg')
    assert METRICS.get('IoUMetric').__module__.startswith('mmseg')
