# The embedded default: a synthetic dataset in exact VOC 2012 layout, made by
# `python tools/dataset_converters/make_synthvoc.py data/synthvoc`.
_base_ = ['./voc12_cls.py']
data_root = 'data/synthvoc'
crop_size = (96, 96)
# flips only: rescaling and cropping 96 px images mostly cuts the small
# discriminative parts away and slows the from-scratch training down
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackImageLabelInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    dataset=dict(
        data_root=data_root, pipeline=train_pipeline,
        require_seg_map=False))
test_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root))
val_dataloader = test_dataloader
