# Copyright (c) mmcyc contributors. All rights reserved.
from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_file import is_complete_checkpoint, repair_resume_point

__all__ = [
    'AtomicLocalBackend', 'is_complete_checkpoint', 'repair_resume_point'
]
