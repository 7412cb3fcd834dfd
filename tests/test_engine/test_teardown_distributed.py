# Copyright (c) mmcyc contributors. All rights reserved.
"""teardown_distributed frees what holds the group before destroying it."""
import gc
import weakref

import torch.distributed as dist
from torch import nn

from mmcyc.engine import teardown_distributed


def test_teardown_collects_a_cyclic_ddp_model_and_destroys_the_group(
        tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # only an explicit collection may free the cycle
    try:
        model = nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
        holder = dict(model=model)
        holder['self'] = holder  # a reference cycle, as a Runner leaves
        model_ref = weakref.ref(model)
        del model, holder
        assert model_ref() is not None  # kept alive by the cycle
        teardown_distributed()
        assert model_ref() is None
        assert not dist.is_initialized()
    finally:
        if gc_was_enabled:
            gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
