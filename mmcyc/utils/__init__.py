from .atomic_io import atomic_open
from .cam_io import CAMStore, cam_name, dense_cam, load_cam, save_cam

__all__ = [
    'atomic_open', 'CAMStore', 'cam_name', 'dense_cam', 'load_cam', 'save_cam'
]
