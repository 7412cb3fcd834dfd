# Copyright (c) mmcyc contributors. All rights reserved.
"""Distributed set-up that also works on CPU-only machines.

mmengine's ``init_dist('pytorch')`` always calls ``torch.cuda.set_device``,
which fails on a CPU build of torch. On such machines the process group is
initialised here with the ``gloo`` backend before the Runner is built (the
Runner then skips its own initialisation), and DDP is configured without
device ids.
"""
import gc
import os

import torch
import torch.distributed as dist


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Initialise gloo for ``launcher='pytorch'`` when CUDA is unavailable.

    Args:
        cfg (mmengine.Config): The run's config; ``model_wrapper_cfg`` is set
            for CPU DDP when not given.
        launcher (str): The ``--launcher`` argument.

    Returns:
        bool: Whether a CPU process group was initialised here.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(f'launcher {launcher!r} needs GPUs; on CPU use '
                           "--launcher pytorch (torchrun) with gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault(
        'model_wrapper_cfg',
        dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False))
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    os.environ.setdefault('LOCAL_RANK', '0')
    return True


def teardown_distributed() -> None:
    """Free what still holds the process group, wait, then destroy it.

    A rank that exits while gloo's threads still hold the group aborts with
    ``terminate called without an active exception`` (SIGABRT), which
    torchrun reports as a failure although the work is done; the tools call
    this at the end of a distributed run so that the ranks leave together.
    The Runner's DDP wrapper (whose reducer holds the group) outlives
    ``main()`` in a reference cycle (measured: one DDP object alive on each
    rank after ``tools/test.py``'s ``main()``, none after a collection), so
    it is collected first, while the interpreter is whole, instead of at
    interpreter shutdown after the group is gone.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
