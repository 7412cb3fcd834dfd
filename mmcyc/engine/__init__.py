from .checkpoint_loader import register_trusted_checkpoint_loader
from .distributed import setup_cpu_distributed

__all__ = ['register_trusted_checkpoint_loader', 'setup_cpu_distributed']
