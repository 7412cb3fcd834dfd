# Image pairs of the embedded synthetic dataset (stage 2); see voc12_pairs.py.
_base_ = ['./synthvoc_cls.py']
train_dataloader = dict(
    sampler=dict(_delete_=True, type='PairSampler', shuffle=True),
    collate_fn=dict(type='pair_collate'),
    dataset=dict(
        _delete_=True,
        type='PairedVOCDataset',
        dataset={{_base_.train_dataloader.dataset}}))
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None
