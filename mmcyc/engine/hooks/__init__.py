"""Hooks registered in ``mmseg.registry.HOOKS``."""
from .cam_writer_hook import CAMWriterHook
from .dcfs_hook import DCFSHook
from .pseudo_mask_writer_hook import PseudoMaskWriterHook, write_palette_png

__all__ = ['CAMWriterHook', 'DCFSHook', 'PseudoMaskWriterHook', 'write_palette_png']
