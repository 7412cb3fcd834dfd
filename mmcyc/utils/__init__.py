from .cam_io import CAMStore, cam_name, dense_cam, load_cam, save_cam

__all__ = ['CAMStore', 'cam_name', 'dense_cam', 'load_cam', 'save_cam']
