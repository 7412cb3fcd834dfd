# Stage 1 on the embedded synthetic dataset (CPU, a few minutes); the
# from-scratch recipe is _base_/schedules/cam_synthvoc_40ep.py.
_base_ = [
    './_base_/models/cam_resnet38.py', './_base_/datasets/synthvoc_cls.py',
    './_base_/schedules/cam_synthvoc_40ep.py', './_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(size=(96, 96)),
    backbone=dict(
        # a narrow ResNet-38 (64 -> 8 base channels) trained from scratch:
        # no ImageNet weights offline, so BatchNorm must learn (norm_eval
        # False), nothing is frozen, and the dropouts meant for the 105 M
        # parameter model would only slow a 1.6 M one down.
        widen_factor=0.125,
        frozen_stages=-1,
        norm_eval=False,
        dropout_b6=0.0,
        dropout_b7=0.0,
        init_cfg=None),
    dropout_ratio=0.0,
    # The reference scales (1.0, 0.5, 1.5, 2.0) are for ~500 px VOC images.
    # Synthetic images are 96 px, so the 12x12 CAM of scale 1 spreads each
    # part over the whole object and beyond (train mIoU 27.7 at bg 0.2, best
    # sweep score 0.55); upscaling 2x and 3x gives the CAM about as many cells
    # per object as VOC gets and puts the best background score back at the
    # paper's 0.2 (train mIoU 34.1), measured on the default dataset.
    test_cfg=dict(scales=(2.0, 3.0), flip=True))
