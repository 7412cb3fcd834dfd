"""Hooks registered in ``mmseg.registry.HOOKS``."""
from .cam_writer_hook import CAMWriterHook
from .dcfs_hook import DCFSHook
from .pseudo_mask_writer_hook import PseudoMaskWriterHook, write_palette_png
from .rng_state_hook import RNGStateHook

__all__ = ['CAMWriterHook', 'DCFSHook', 'PseudoMaskWriterHook', 'RNGStateHook',
           'write_palette_png']
