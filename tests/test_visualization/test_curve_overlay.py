import numpy as np
import pytest

from mmcyc.visualization import draw_overlaid_curves


def test_draw_overlaid_curves():
    series = {
        'fixed0': ([1, 2, 3], [0.0, 0.0, 0.0]),
        'momentum': ([1, 2, 3], [0.0, 0.01, 0.02]),
    }
    image = draw_overlaid_curves(series, title='Fig. 4', ylabel='beta2')
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.std() > 0
    # one panel whatever the number of series
    assert draw_overlaid_curves(dict(a=series['fixed0'])).shape == image.shape
    with pytest.raises(ValueError, match='no series'):
        draw_overlaid_curves({})
    with pytest.raises(ValueError, match="'a' has 2 steps but 1 values"):
        draw_overlaid_curves({'a': ([1, 2], [0.5])})
