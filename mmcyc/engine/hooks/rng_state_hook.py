# Copyright (c) mmcyc contributors. All rights reserved.
"""The random state of a training run, kept in its checkpoints."""
import pickle
import random
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from mmseg.registry import HOOKS

# room for one worker's pickled (numpy, random, torch) states; they take
# about 13 kB
SLOT_BYTES = 32768
LENGTH_BYTES = 8


def capture_rng_state() -> bytes:
    """This process's numpy, ``random``, torch CPU and CUDA states, pickled."""
    state = dict(
        numpy=np.random.get_state(),
        random=random.getstate(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return pickle.dumps(state)


def restore_rng_state(blob: bytes) -> None:
    """Set this process's random states to a :func:`capture_rng_state`'s."""
    state = pickle.loads(blob)
    np.random.set_state(state['numpy'])
    random.setstate(state['random'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])


class WorkerRNGSlots:
    """Shared memory where each dataloader worker leaves its random state.

    A worker writes its state after every sample, so at the end of an epoch
    slot ``w`` holds the state that worker ``w`` starts the next epoch with
    (persistent workers prefetch nothing of the next epoch before its
    iterator is reset). States to restore (``pending``) are applied by each
    worker before its first sample.

    Args:
        num_workers (int): The dataloader's ``num_workers``.
        pending (dict, optional): Worker id -> state (from a checkpoint) to
            restore before the worker's first sample. Defaults to None.
    """

    def __init__(self, num_workers: int,
                 pending: Optional[Dict[int, bytes]] = None) -> None:
        # (num_workers, LENGTH_BYTES + SLOT_BYTES): byte length, then bytes
        self.buffer = torch.zeros(
            num_workers, LENGTH_BYTES + SLOT_BYTES,
            dtype=torch.uint8).share_memory_()
        self.pending = dict(pending or {})
        self._restored = False  # per process: a forked copy starts False

    def restore(self, results: dict) -> dict:
        """First step of the pipeline: the saved state, once per worker."""
        info = torch.utils.data.get_worker_info()
        if info is not None and not self._restored:
            self._restored = True
            if info.id in self.pending:
                restore_rng_state(self.pending[info.id])
        return results

    def record(self, results: dict) -> dict:
        """Last step of the pipeline: this worker's state into its slot."""
        info = torch.utils.data.get_worker_info()
        if info is not None:
            blob = capture_rng_state()
            if len(blob) > SLOT_BYTES:
                raise RuntimeError(
                    f'RNGStateHook: a worker state takes {len(blob)} bytes, '
                    f'more than the {SLOT_BYTES} of its slot')
            slot = self.buffer[info.id]
            slot[:LENGTH_BYTES] = torch.tensor(
                list(len(blob).to_bytes(LENGTH_BYTES, 'little')),
                dtype=torch.uint8)
            slot[LENGTH_BYTES:LENGTH_BYTES + len(blob)] = torch.frombuffer(
                bytearray(blob), dtype=torch.uint8)
        return results

    def read(self) -> Dict[int, bytes]:
        """Worker id -> last recorded state (workers that recorded one)."""
        states = {}
        for wid, slot in enumerate(self.buffer):
            size = int.from_bytes(
                bytes(slot[:LENGTH_BYTES].tolist()), 'little')
            if size:
                states[wid] = bytes(
                    slot[LENGTH_BYTES:LENGTH_BYTES + size].numpy())
        return states


class _SlotTransform:
    """A pipeline step calling one method of :class:`WorkerRNGSlots`."""

    def __init__(self, slots: WorkerRNGSlots, action: str) -> None:
        self.slots = slots
        self.action = action

    def __call__(self, results: dict) -> dict:
        return getattr(self.slots, self.action)(results)

    def __repr__(self) -> str:
        return f'WorkerRNG{self.action.capitalize()}()'


def iter_pipelines(dataset) -> Iterator:
    """The ``Compose`` pipelines of a dataset and of the datasets it wraps."""
    pipeline = getattr(dataset, 'pipeline', None)
    if pipeline is not None and isinstance(
            getattr(pipeline, 'transforms', None), list):
        yield pipeline
    for inner in [getattr(dataset, 'dataset', None),
                  *getattr(dataset, 'datasets', [])]:
        if inner is not None:
            yield from iter_pipelines(inner)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Makes a resumed training end with the weights of an uninterrupted one.

    mmengine restores the weights, optimizer, schedulers and counters on
    ``resume``, and the samplers reshuffle from (seed, epoch), but not the
    random states: dropout draws from the main process's torch generator,
    and the data augmentation from each dataloader worker's numpy /
    ``random`` / torch generators, which persistent workers carry from one
    epoch to the next. This hook saves them in every checkpoint and puts
    them back on resume, without changing what an uninterrupted run draws.

    Call order::

        before_train:       epoch loop with persistent workers: a first and
                            a last step added to each train pipeline (the
                            worker restores its saved state before its first
                            sample, and leaves its state in shared memory
                            after each sample)
        after_train_iter:   iteration loops: the main process's states
                            captured where CheckpointHook saves
        after_train_epoch:  the main and the workers' states captured
                            (gathered from every rank)
        before_save_checkpoint: checkpoint['rng_state']
        after_load_checkpoint (resume only): the states read back
        before_train_epoch / first before_train_iter after a resume: the
                            main process's state restored where an
                            uninterrupted run would have had it (before the
                            epoch's dataloader iterator is made when the
                            loader makes one each epoch, after it otherwise)
        before_val_epoch / after_val_epoch: the main state saved and put
                            back, so a validation inside training draws
                            nothing from it

    Note:
        Iteration-based loops need no worker states: on resume mmengine
        replays the dataloader up to the resumed iteration, so the workers
        redraw the same augmentations. Resume is exact on the same machine,
        world size and number of workers; with another world size the
        states are not restored and a warning says so.

    Note:
        Priority 'LOW': the states are captured after the other hooks'
        ``after_train_*`` and before ``CheckpointHook`` (VERY_LOW) saves.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._main: Optional[List[bytes]] = None  # per rank
        self._workers: Optional[List[Dict[int, bytes]]] = None  # per rank
        self._resumed_main: Optional[bytes] = None
        self._resumed_workers: Optional[Dict[int, bytes]] = None
        self._restore_before_epoch = True
        self._slots: Optional[WorkerRNGSlots] = None
        self._val_state: Optional[bytes] = None

    def before_train(self, runner) -> None:
        loader = runner.train_loop.dataloader
        epoch_based = isinstance(runner.train_loop, EpochBasedTrainLoop)
        persistent = bool(loader.num_workers > 0
                          and getattr(loader, 'persistent_workers', False))
        # a loader that makes its iterator (and draws its base seed from
        # the main generator) at every epoch gets the state before that
        self._restore_before_epoch = epoch_based and not persistent
        if not (epoch_based and persistent):
            return
        pipelines = list(iter_pipelines(loader.dataset))
        if not pipelines:
            print_log(
                'RNGStateHook: the train dataset has no pipeline to record '
                'the workers\' random states from; a resumed run will '
                'augment differently', logger='current', level=30)
            return
        self._slots = WorkerRNGSlots(loader.num_workers,
                                     self._resumed_workers)
        for pipeline in pipelines:
            pipeline.transforms.insert(0, _SlotTransform(self._slots,
                                                         'restore'))
            pipeline.transforms.append(_SlotTransform(self._slots, 'record'))

    def before_train_epoch(self, runner) -> None:
        if self._restore_before_epoch:
            self._restore_main()

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._restore_main()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            return  # epoch loops save at epoch ends: captured there
        if self._saves_after(runner):
            self._capture(with_workers=False)

    def _saves_after(self, runner) -> bool:
        """Whether ``CheckpointHook`` saves after this iteration (its own
        rule), so that the states (and, with several ranks, a gather that
        syncs the host) are taken then, not after every step. True without
        an iteration-based ``CheckpointHook``."""
        hook = next((h for h in runner.hooks
                     if isinstance(h, CheckpointHook)), None)
        if hook is None or hook.by_epoch:
            return True
        return bool(
            hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
            or (hook.save_last and hook.is_last_train_iter(runner)))

    def after_train_epoch(self, runner) -> None:
        self._capture(with_workers=True)

    def before_val_epoch(self, runner) -> None:
        self._val_state = capture_rng_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._val_state is not None:
            restore_rng_state(self._val_state)
            self._val_state = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._main is None:
            return
        checkpoint['rng_state'] = dict(
            world_size=len(self._main), main=self._main,
            workers=self._workers)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:
            return  # weights for fine-tuning (load_from): a new run
        state = checkpoint.get('rng_state')
        rank, world_size = get_dist_info()
        if state is None or state['world_size'] != world_size:
            reason = ('it holds no random state' if state is None else
                      f'it was saved by {state["world_size"]} processes, '
                      f'this run has {world_size}')
            print_log(
                f'RNGStateHook: the checkpoint is resumed without its '
                f'random states ({reason}): dropout and augmentation will '
                'differ from an uninterrupted run', logger='current',
                level=30)
            return
        self._resumed_main = state['main'][rank]
        workers = state['workers']
        self._resumed_workers = workers[rank] if workers else None

    def _restore_main(self) -> None:
        if self._resumed_main is not None:
            restore_rng_state(self._resumed_main)
            self._resumed_main = None

    def _capture(self, with_workers: bool) -> None:
        main = capture_rng_state()
        workers = self._slots.read() if (with_workers and self._slots) \
            else None
        _, world_size = get_dist_info()
        if world_size > 1:
            gathered = all_gather_object((main, workers))
            self._main = [m for m, _ in gathered]
            self._workers = [w for _, w in gathered]
        else:
            self._main = [main]
            self._workers = [workers]
        if not any(self._workers):
            self._workers = None
