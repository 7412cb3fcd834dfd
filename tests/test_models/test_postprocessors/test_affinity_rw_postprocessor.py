import pytest
import torch
from mmseg.registry import MODELS

from mmcyc.models.postprocessors.affinity_rw_postprocessor import \
    AffinityRWPostprocessor


def dense_psa_walk(embedding, scores, radius=5, beta=8.0, logt=8):
    """psa ``infer_aff.py`` on one image: dense matrix squared ``logt`` times.

    Pairs: "from" pixel in rows [0, h - r), columns [r, w - r) (r = radius
    - 1), partner within the radius and later in raster order.
    """
    _, height, width = scores.shape
    area, floor = height * width, radius - 1
    feats = embedding.double().reshape(embedding.shape[0], -1)
    aff = torch.eye(area, dtype=torch.float64)
    for y in range(height - floor):
        for x in range(floor, width - floor):
            for v in range(y, min(y + radius, height)):
                for u in range(max(x - floor, 0), min(x + radius, width)):
                    later = v > y or u > x
                    if later and (v - y)**2 + (u - x)**2 < radius**2:
                        i, j = y * width + x, v * width + u
                        diff = (feats[:, i] - feats[:, j]).abs().mean()
                        aff[i, j] = aff[j, i] = torch.exp(-diff)
    trans = aff**beta
    trans = trans / trans.sum(dim=0, keepdim=True)
    for _ in range(logt):
        trans = trans @ trans
    out = scores.double().reshape(scores.shape[0], -1) @ trans
    return out.reshape(scores.shape)


def test_build_from_registry_with_psa_defaults():
    rw = MODELS.build(dict(type='AffinityRWPostprocessor'))
    assert isinstance(rw, AffinityRWPostprocessor)
    assert (rw.radius, rw.beta, rw.steps) == (5, 8.0, 256)
    assert len(rw.offsets) == 34
    assert len(list(rw.parameters())) == 0


def test_defaults_reproduce_psa_infer_aff():
    gen = torch.Generator().manual_seed(0)
    embedding = torch.rand(2, 6, 9, 12, generator=gen) * 0.4
    scores = torch.rand(2, 4, 9, 12, generator=gen)
    out = AffinityRWPostprocessor()(embedding, scores)
    assert out.shape == scores.shape
    assert not out.requires_grad
    for n in range(2):
        expected = dense_psa_walk(embedding[n], scores[n])
        rel = (out[n].double() - expected).abs().max() / expected.abs().max()
        assert rel < 1e-4


def test_walk_stays_inside_regions_of_the_embedding():
    # Left half and right half of the embedding are far apart: affinity
    # across is exp(-10)^8, so a seed spreads over its own half only.
    embedding = torch.zeros(1, 2, 12, 16)
    embedding[:, :, :, 8:] = 10.0
    scores = torch.zeros(1, 2, 12, 16)
    scores[0, 0, 5, 5] = 1.0  # class seed on the left
    scores[0, 1, 5, 11] = 1.0  # another seed on the right
    out = AffinityRWPostprocessor(steps=64)(embedding, scores)
    # Spread over its own half (rows 1-9: psa's pair set leaves a few
    # corner pixels without pairs, see test_random_walk).
    assert out[0, 0, 1:10, :8].min() > 0
    assert out[0, 0, :, 8:].max() < 1e-6
    assert out[0, 1, :, :8].max() < 1e-6
    assert out[0, 1, 1:10, 8:].min() > 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(radius=1), 'radius must be an int >= 2, got 1'),
    (dict(radius=2.5), 'radius'),
    (dict(beta=0), 'beta must be a number > 0, got 0'),
    (dict(beta=-1.0), 'beta'),
    (dict(steps=-1), 'steps must be an int >= 0, got -1'),
    (dict(steps=2.5), 'steps'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AffinityRWPostprocessor(**kwargs)


def test_bad_inputs():
    rw = AffinityRWPostprocessor()
    with pytest.raises(ValueError, match='same batch size and size'):
        rw(torch.rand(1, 4, 8, 9), torch.rand(1, 2, 8, 10))
    with pytest.raises(ValueError, match='same batch size and size'):
        rw(torch.rand(2, 4, 8, 9), torch.rand(1, 2, 8, 9))
    with pytest.raises(ValueError, match='must be'):
        rw(torch.rand(4, 8, 9), torch.rand(1, 2, 8, 9))
    scores = torch.rand(1, 2, 8, 9)
    scores[0, 1, 2, 3] = -0.5
    with pytest.raises(ValueError, match='non-negative.*-0.5'):
        rw(torch.rand(1, 4, 8, 9), scores)
    scores[0, 1, 2, 3] = float('nan')
    with pytest.raises(ValueError, match='finite'):
        rw(torch.rand(1, 4, 8, 9), scores)
