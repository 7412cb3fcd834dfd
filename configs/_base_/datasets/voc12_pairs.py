# VOC 2012 + SBD image pairs (A, B) sharing at least one class (stage 2):
# the stage-1 training set, each image through the stage-1 training pipeline
# independently. PairSampler draws the partners; pair_collate lays a batch of
# N pairs out as [A_1..A_N, B_1..B_N] for the stock SegDataPreProcessor.
_base_ = ['./voc12_cls.py']
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
