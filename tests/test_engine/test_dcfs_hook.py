import json
import logging
import math
import os.path as osp
import socket
from datetime import timedelta
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmseg.registry import HOOKS

from mmcyc.engine import DCFSHook, register_trusted_checkpoint_loader


class ToyHead(nn.Module):

    def __init__(self, tensor=False):
        super().__init__()
        if tensor:
            self.register_buffer('beta2', torch.tensor(0.5))
        else:
            self.beta2 = 0.5


class ToyCycModel(BaseModel):
    """Logs a fixed V^sel statistic and records the beta2 it trains with."""

    def __init__(self, wb_mean=0.4, num_selected=3.):
        super().__init__()
        self.head = ToyHead()
        self.linear = nn.Linear(2, 1)
        self.wb_mean, self.num_selected = wb_mean, num_selected
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.seen.append(self.head.beta2)
        loss = self.linear(torch.stack(inputs)).pow(2).mean()
        return dict(
            loss_toy=loss,
            cyc_wb_mean=torch.tensor(self.wb_mean),
            cyc_wb_count=torch.tensor(self.num_selected))


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict()

    def __len__(self):
        return 4

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)))


def fake_runner(model=None, name='dcfs_fake'):
    return SimpleNamespace(
        model=model if model is not None else ToyCycModel(),
        message_hub=MessageHub.get_instance(name))


def run_steps(hook, stats, runner=None):
    """Feed (mean, count) statistics; return beta2 after each step."""
    runner = runner or fake_runner()
    values = []
    for i, (mean, count) in enumerate(stats):
        hook.before_train_iter(runner, i)
        outputs = dict(
            loss=torch.tensor(1.), cyc_wb_mean=torch.tensor(mean),
            cyc_wb_count=torch.tensor(count))
        hook.after_train_iter(runner, i, outputs=outputs)
        values.append(hook.beta2)
    return values


# (mean, count); count 0 (mean nan or stale) must leave beta2 unchanged
STATS = [(0.5, 10.), (0.8, 0.), (0.2, 4.), (math.nan, 0.), (1.0, 1.)]


def test_momentum_eq9_by_hand():
    # b = 0.95 b + 0.05 stat from b = 0
    expected = [0.025, 0.025, 0.03375, 0.03375, 0.0820625]
    assert run_steps(DCFSHook(), STATS) == pytest.approx(expected)


def test_dynamic_and_fixed():
    assert run_steps(DCFSHook(mode='dynamic'), STATS) == pytest.approx(
        [0.5, 0.5, 0.2, 0.2, 1.0])
    assert run_steps(DCFSHook(mode='fixed', init_value=0.3),
                     STATS) == [0.3] * 5
    hook = DCFSHook(init_value=0.2, kappa=0.5)
    assert run_steps(hook, [(0.6, 2.)]) == pytest.approx([0.4])


def test_writes_model_and_logs():
    runner = fake_runner(name='dcfs_writes')
    hook = DCFSHook(mode='dynamic')
    run_steps(hook, [(0.6, 2.), (0.3, 5.)], runner)
    hook.before_train_iter(runner, 2)
    assert runner.model.head.beta2 == pytest.approx(0.3)
    history, _ = runner.message_hub.get_scalar('train/beta2').data
    assert history.tolist() == pytest.approx([0., 0.6, 0.3])
    # a tensor attribute (buffer) is filled in place
    runner.model.head = ToyHead(tensor=True)
    buffer = runner.model.head.beta2
    hook.before_train(runner)
    assert runner.model.head.beta2 is buffer and buffer.item() == \
        pytest.approx(0.3)
    hook = DCFSHook(target='head.nothing')
    with pytest.raises(AttributeError, match='head.nothing'):
        hook.before_train(runner)
    with pytest.raises(KeyError, match='cyc_wb_count'):
        DCFSHook().after_train_iter(
            runner, 0, outputs=dict(cyc_wb_mean=torch.tensor(0.)))


@pytest.mark.parametrize('kwargs, match', [
    (dict(kappa=1.0), 'kappa.*1.0'),
    (dict(kappa=-0.1), 'kappa.*-0.1'),
    (dict(mode='ema'), "'ema'"),
    (dict(init_value=1.5), 'init_value.*1.5'),
    (dict(target=''), 'target'),
])
def test_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DCFSHook(**kwargs)


def test_checkpoint_round_trip():
    hook = HOOKS.build(dict(type='DCFSHook', mode='dynamic'))
    run_steps(hook, [(0.45, 3.)])
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    assert checkpoint['dcfs'] == dict(beta2=pytest.approx(0.45),
                                      mode='dynamic')
    restored = DCFSHook(mode='dynamic')
    restored.after_load_checkpoint(None, checkpoint)
    assert restored.beta2 == hook.beta2
    fixed = DCFSHook(mode='fixed', init_value=0.1)
    fixed.after_load_checkpoint(None, checkpoint)
    assert fixed.beta2 == 0.1

    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        restored.after_load_checkpoint(None, {'meta': {}})
    finally:
        logger.removeHandler(handler)
    assert restored.beta2 == pytest.approx(0.45)
    assert any("no 'dcfs'" in r for r in records)


def make_runner(work_dir, name, max_epochs, model, **kwargs):
    from mmengine.runner import Runner
    return Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=[dict(type='DCFSHook')],
        default_scope='mmseg',
        randomness=dict(seed=0),
        log_level='WARNING',
        **kwargs)


def test_runner_train_checkpoint_resume(tmp_path):
    # 2 epochs x 2 iterations of stat 0.4: beta2 = 0.4 (1 - 0.95^4)
    saved = 0.4 * (1 - 0.95**4)
    register_trusted_checkpoint_loader()  # as tools/train.py does (torch 2.6)
    model = ToyCycModel()
    runner = make_runner(tmp_path, f'dcfs_{tmp_path.name}_a', 2, model)
    runner.train()
    assert model.seen == pytest.approx(
        [0, 0.02, 0.02 * 0.95 + 0.02, 0.4 * (1 - 0.95**3)])
    history, _ = runner.message_hub.get_scalar('train/beta2').data
    assert history.tolist() == pytest.approx(model.seen)
    # LocalVisBackend's file, fed by LoggerHook every iteration
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        logged = [json.loads(line) for line in f]
    assert [r['beta2'] for r in logged] == pytest.approx(model.seen)
    ckpt = torch.load(
        osp.join(tmp_path, 'epoch_2.pth'), map_location='cpu',
        weights_only=False)
    assert ckpt['dcfs'] == dict(beta2=pytest.approx(saved), mode='momentum')

    resumed_model = ToyCycModel(wb_mean=0.0)
    resumed = make_runner(
        tmp_path, f'dcfs_{tmp_path.name}_b', 3, resumed_model, resume=True,
        load_from=osp.join(tmp_path, 'epoch_2.pth'))
    resumed.train()
    assert resumed_model.seen[0] == pytest.approx(saved)
    assert resumed_model.seen[1] == pytest.approx(0.95 * saved)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# per rank, per step (mean, count); step 2 selects nothing anywhere,
# step 4 selects on rank 0 only
RANK_STATS = [[(0.5, 3.), (0.7, 0.), (0.1, 2.), (0.6, 2.)],
              [(0.9, 1.), (math.nan, 0.), (0.3, 6.), (0.0, 0.)]]


def _rank_steps(rank):
    model = nn.parallel.DistributedDataParallel(ToyCycModel())
    runner = fake_runner(model, name=f'dcfs_rank{rank}')
    values = run_steps(DCFSHook(), RANK_STATS[rank], runner)
    return dict(values=values, model_beta2=model.module.head.beta2)


def _dist_worker(rank, port, out_dir):
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2, timeout=timedelta(seconds=60))
    try:
        # DDP is freed inside _rank_steps, before its process group
        result = _rank_steps(rank)
        with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


def test_same_beta2_on_two_gloo_ranks(tmp_path):
    # weighted means: (1.5 + 0.9) / 4 = 0.6; skip; (0.2 + 1.8) / 8 = 0.25;
    # 1.2 / 2 = 0.6
    expected = [0.03, 0.03, 0.041, 0.06895]
    mp.spawn(_dist_worker, args=(free_port(), str(tmp_path)), nprocs=2)
    results = []
    for rank in range(2):
        with open(tmp_path / f'rank{rank}.json') as f:
            results.append(json.load(f))
        assert results[rank]['values'] == pytest.approx(expected)
        # DDP unwrapped: the model saw the beta2 written before the last step
        assert results[rank]['model_beta2'] == pytest.approx(0.041)
    assert results[0]['values'] == results[1]['values']
