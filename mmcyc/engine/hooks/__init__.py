"""Hooks registered in ``mmseg.registry.HOOKS``."""
from .dcfs_hook import DCFSHook

__all__ = ['DCFSHook']
