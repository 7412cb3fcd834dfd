"""configs/cam_resnet38_synthvoc_scalecrop.py: stage 1's training images
are 96 px crops of the image scaled 1.0-1.7x (psa's augmentation at
SynthVOC's size), each with the image's label, framed anew at every draw;
everything but the training pipeline is the default stage-1 config's."""
import numpy as np
from mmengine.config import Config
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules

import mmcyc  # noqa: F401

CONFIG = 'configs/cam_resnet38_synthvoc_scalecrop.py'
DEFAULT = 'configs/cam_resnet38_synthvoc.py'


def test_only_the_training_pipeline_differs():
    cfg, default = Config.fromfile(CONFIG), Config.fromfile(DEFAULT)
    assert cfg.model == default.model
    assert cfg.optim_wrapper == default.optim_wrapper
    assert cfg.param_scheduler == default.param_scheduler
    assert cfg.test_dataloader == default.test_dataloader
    kinds = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert kinds == ['LoadCheckedImageFromFile', 'RandomResize', 'RandomCrop',
                     'RandomFlip', 'PackImageLabelInputs']


def test_crops_are_96px_scaled_views_with_the_image_label(tmp_path):
    from mmcyc.datasets.synthvoc import make_synthvoc
    register_all_modules()
    make_synthvoc(str(tmp_path), num_train=4, num_val=2, size=96, seed=0)
    cfg = Config.fromfile(CONFIG)
    dataset = DATASETS.build(
        dict(cfg.train_dataloader.dataset, data_root=str(tmp_path)))
    labels = np.load(tmp_path / 'cls_labels.npy', allow_pickle=True).item()
    for index in range(len(dataset)):
        name = dataset.get_data_info(index)['img_path'].split('/')[-1][:-4]
        crops = []
        for _ in range(6):
            sample = dataset[index]
            crop = sample['inputs']
            assert tuple(crop.shape) == (3, 96, 96)
            meta = sample['data_samples'].metainfo
            scale = np.asarray(meta['scale_factor'])
            assert np.all(scale >= 1.0 - 1e-6) and np.all(scale <= 1.7 + 0.02)
            np.testing.assert_array_equal(
                sample['data_samples'].gt_img_label.numpy(), labels[name])
            crops.append(crop.numpy())
        # framed anew: not every draw the same pixels
        assert any(not np.array_equal(crops[0], c) for c in crops[1:])
