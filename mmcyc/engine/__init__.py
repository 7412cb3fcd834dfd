from .checkpoint_loader import register_trusted_checkpoint_loader
from .distributed import setup_cpu_distributed, teardown_distributed
from .hooks import *  # noqa: F401,F403
from .hooks import __all__ as _hooks_all

__all__ = [
    'register_trusted_checkpoint_loader', 'setup_cpu_distributed',
    'teardown_distributed'
] + _hooks_all
