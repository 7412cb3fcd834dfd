import json

import numpy as np
import pytest
from mmengine.visualization import Visualizer

from mmcyc.visualization import draw_curves, read_scalars


def test_read_and_draw(tmp_path):
    path = tmp_path / 'scalars.json'
    with open(path, 'w') as f:
        for step in range(1, 6):
            f.write(json.dumps(dict(beta2=0.1 * step, loss=1.0 / step,
                                    step=step)) + '\n')
        f.write(json.dumps(dict(lr=0.01, step=6)) + '\n')
    series = read_scalars(str(path), ('beta2', 'loss', 'missing'))
    assert set(series) == {'beta2', 'loss'}
    assert series['beta2'][0] == [1, 2, 3, 4, 5]
    assert series['beta2'][1] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    image = draw_curves(series, title='DCFS')
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[1] > image.shape[0]  # two panels side by side
    assert image.std() > 0  # something was drawn

    vis = Visualizer(name='curves_test', save_dir=str(tmp_path / 'vis'),
                     vis_backends=[dict(type='LocalVisBackend')])
    vis.add_image('curves', image)
    assert (tmp_path / 'vis' / 'vis_data' / 'vis_image' / 'curves_0.png').is_file()
    with pytest.raises(ValueError, match='no series'):
        draw_curves({})
