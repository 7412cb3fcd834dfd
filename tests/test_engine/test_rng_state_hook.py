"""RNGStateHook's pieces: process states and the workers' shared slots."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmseg.registry import HOOKS
from torch.utils.data import DataLoader, Dataset

from mmcyc.engine.hooks.rng_state_hook import (RNGStateHook, WorkerRNGSlots,
                                               _SlotTransform,
                                               capture_rng_state,
                                               iter_pipelines,
                                               restore_rng_state)


def draw_all(results):
    """An augmentation drawing from the three generators a worker seeds."""
    results['draw'] = (np.random.rand(), random.random(),
                       torch.rand(1).item())
    return results


class DrawDataset(Dataset):
    """Eight samples whose value is the pipeline's random draws."""

    def __init__(self):
        self.pipeline = Compose([draw_all])

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return torch.tensor(self.pipeline(dict(idx=idx))['draw'])


def seed_worker(worker_id):
    # mmengine's worker_init_fn: the same seeds in every run
    np.random.seed(worker_id)
    random.seed(worker_id)
    torch.manual_seed(worker_id)


def make_loader(slots=None):
    dataset = DrawDataset()
    if slots is not None:
        dataset.pipeline.transforms.insert(0, _SlotTransform(slots, 'restore'))
        dataset.pipeline.transforms.append(_SlotTransform(slots, 'record'))
    # persistent workers carry their generators from epoch to epoch
    return DataLoader(dataset, batch_size=2, num_workers=2,
                      persistent_workers=True, worker_init_fn=seed_worker,
                      multiprocessing_context='fork')


def run_epochs(loader, epochs):
    return [torch.cat(list(loader)) for _ in range(epochs)]


def test_process_state_round_trip():
    blob = capture_rng_state()
    first = (np.random.rand(3), random.random(), torch.rand(3))
    restore_rng_state(blob)
    again = (np.random.rand(3), random.random(), torch.rand(3))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
    assert torch.equal(first[2], again[2])


def test_workers_continue_from_their_recorded_states():
    # uninterrupted: three epochs with the same persistent workers
    full = run_epochs(make_loader(), 3)
    # the slots change no draw of an uninterrupted run
    recorded = WorkerRNGSlots(num_workers=2)
    with_slots = run_epochs(make_loader(recorded), 3)
    for a, b in zip(full, with_slots):
        assert torch.equal(a, b)
    # interrupted after epoch 1: new workers given the recorded states
    first = WorkerRNGSlots(num_workers=2)
    epoch1 = run_epochs(make_loader(first), 1)
    states = first.read()
    assert sorted(states) == [0, 1]
    resumed = run_epochs(make_loader(WorkerRNGSlots(2, pending=states)), 2)
    assert torch.equal(epoch1[0], full[0])
    assert torch.equal(resumed[0], full[1])
    assert torch.equal(resumed[1], full[2])
    # new workers without them repeat epoch 1's draws: what a resume did
    restarted = run_epochs(make_loader(), 1)
    assert not torch.equal(restarted[0], full[1])
    assert torch.equal(restarted[0], full[0])


def test_slots_read_nothing_before_any_sample():
    assert WorkerRNGSlots(num_workers=3).read() == {}


def test_iter_pipelines_finds_wrapped_pipelines():

    class Wrapper:

        def __init__(self, dataset=None, datasets=()):
            self.dataset = dataset
            self.datasets = list(datasets)

    a, b = DrawDataset(), DrawDataset()
    found = list(iter_pipelines(Wrapper(datasets=[Wrapper(dataset=a), b])))
    assert found == [a.pipeline, b.pipeline]
    assert list(iter_pipelines(Wrapper())) == []


def test_checkpoint_round_trip_and_resume_only():
    hook = HOOKS.build(dict(type='RNGStateHook'))
    assert isinstance(hook, RNGStateHook)
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    assert 'rng_state' not in checkpoint  # nothing captured yet
    hook._capture(with_workers=True)
    expected = torch.rand(4)  # the first draw after the captured state
    hook.before_save_checkpoint(None, checkpoint)
    assert checkpoint['rng_state']['world_size'] == 1
    assert checkpoint['rng_state']['workers'] is None  # no worker slots
    # resume: the state comes back at the first iteration, once
    resumed = RNGStateHook()
    resumed.after_load_checkpoint(SimpleNamespace(_resume=True), checkpoint)
    resumed.before_train_iter(None, 0)
    assert torch.equal(torch.rand(4), expected)
    resumed.before_train_iter(None, 1)
    assert not torch.equal(torch.rand(4), expected)
    # load_from (weights for a new run) restores nothing
    loaded = RNGStateHook()
    loaded.after_load_checkpoint(SimpleNamespace(_resume=False), checkpoint)
    assert loaded._resumed_main is None
    # a checkpoint of another world size is resumed without its states
    checkpoint['rng_state']['world_size'] = 2
    other = RNGStateHook()
    other.after_load_checkpoint(SimpleNamespace(_resume=True), checkpoint)
    assert other._resumed_main is None


def test_validation_inside_training_draws_nothing():
    blob = capture_rng_state()
    expected = torch.rand(2), np.random.rand(2)
    restore_rng_state(blob)
    hook = RNGStateHook()
    hook.before_val_epoch(None)
    torch.rand(10), np.random.rand(10), random.random()  # the validation
    hook.after_val_epoch(None)
    assert torch.equal(torch.rand(2), expected[0])
    np.testing.assert_array_equal(np.random.rand(2), expected[1])


def test_oversized_state_is_an_error(monkeypatch):
    import mmcyc.engine.hooks.rng_state_hook as module
    monkeypatch.setattr(module, 'SLOT_BYTES', 16)
    slots = WorkerRNGSlots(num_workers=1)
    monkeypatch.setattr(torch.utils.data, 'get_worker_info',
                        lambda: SimpleNamespace(id=0))
    with pytest.raises(RuntimeError, match='bytes, more than the 16'):
        slots.record({})
