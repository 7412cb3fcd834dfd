from .atomic_io import atomic_open
from .cam_io import CAMStore, cam_name, dense_cam, load_cam, save_cam
from .checked_settings import checked_settings
from .child_process import run_child

__all__ = [
    'atomic_open', 'CAMStore', 'cam_name', 'checked_settings', 'dense_cam',
    'load_cam', 'run_child', 'save_cam'
]
