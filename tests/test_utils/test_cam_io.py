import os

import numpy as np
import pytest
import torch

from mmcyc.utils import CAMStore, load_cam, save_cam


def test_round_trip_and_dense(tmp_path):
    store = CAMStore(str(tmp_path / 'cams'))
    dense = torch.zeros(5, 4, 3)
    dense[1] = 0.5
    dense[3] = torch.linspace(0, 1, 12).view(4, 3)
    labels = torch.tensor([0., 1., 0., 1., 0.])
    store.save('/x/JPEGImages/img_001.jpg', dense, labels)
    assert store.exists('img_001.png')
    cams, keys = load_cam(store.path('img_001.jpg'))
    assert keys.tolist() == [1, 3] and cams.shape == (2, 4, 3)
    back = store.load('img_001.jpg', num_classes=5)
    assert torch.allclose(back, dense, atol=1e-3)  # float16 storage
    assert os.listdir(tmp_path / 'cams') == ['img_001.npz']  # no temp left


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.npz'):
        load_cam(str(tmp_path / 'missing.npz'))
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='bad.npz'):
        load_cam(str(bad))
    with pytest.raises(ValueError, match='K = len'):
        save_cam(str(tmp_path / 'x.npz'), np.zeros((2, 3, 3)), np.zeros(3))
