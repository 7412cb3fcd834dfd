import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger

from mmcyc.models.utils import cosine_kmeans
from mmcyc.models.utils.cosine_kmeans import _reseed_empty


def gen(seed):
    return torch.Generator().manual_seed(seed)


def blobs(seed=0, n=60, dim=8, k=4):
    """n points around k random directions, with random magnitudes."""
    g = gen(seed)
    dirs = F.normalize(torch.randn(k, dim, generator=g), dim=1)
    labels = torch.arange(n) % k
    pts = dirs[labels] + 0.3 * torch.randn(n, dim, generator=g)
    return pts * (1 + torch.rand(n, 1, generator=g) * 4)


def test_two_clusters_recovered_exactly():
    # two groups of positive vectors around the x and the y axis, of very
    # different magnitudes: cosine k-means splits them by direction, and
    # each centre is the mean of its raw points
    group_a = torch.tensor([[1.0, 0.1, 0.0], [3.0, -0.2, 0.1],
                            [2.0, 0.0, -0.1]])
    group_b = torch.tensor([[0.1, 5.0, 0.0], [-0.1, 0.5, 0.05]])
    points = torch.cat([group_a, group_b])
    for init in ('k-means++', 'random'):
        for seed in range(5):
            res = cosine_kmeans(points, 2, max_iters=20, tol=0.0, init=init,
                                generator=gen(seed))
            assign = res.assignments[0]
            assert res.converged.item()
            a, b = assign[0].item(), assign[3].item()
            assert a != b
            assert assign.tolist() == [a, a, a, b, b]
            expected = torch.stack([group_a.mean(0), group_b.mean(0)])
            got = res.centres[0, [a, b]]
            assert torch.allclose(got, expected, atol=1e-6)
            assert res.centre_mask.all()


def test_seeded_runs_are_identical():
    points = blobs()
    first = cosine_kmeans(points, 4, generator=gen(7))
    second = cosine_kmeans(points, 4, generator=gen(7))
    for x, y in zip(first, second):
        assert torch.equal(x, y)
    # per-set generators: a set's result does not depend on its batch
    batch = torch.stack([points, blobs(seed=1)])
    both = cosine_kmeans(batch, 4, generator=[gen(7), gen(8)])
    alone = cosine_kmeans(blobs(seed=1), 4, generator=gen(8))
    assert torch.allclose(both.centres[1], alone.centres[0], atol=1e-5)
    assert torch.equal(both.assignments[1], alone.assignments[0])


def test_padding_is_ignored():
    points = blobs(n=30)
    padded = torch.cat([points, 100 * torch.randn(10, 8)])[None]
    mask = torch.arange(40)[None] < 30
    got = cosine_kmeans(padded, 4, mask, generator=gen(0))
    ref = cosine_kmeans(points, 4, generator=gen(0))
    assert torch.allclose(got.centres, ref.centres, atol=1e-5)
    assert torch.equal(got.assignments[0, :30], ref.assignments[0])
    assert (got.assignments[0, 30:] == -1).all()


def test_cap_honoured_with_a_warning(monkeypatch):
    messages = []
    logger = MMLogger.get_current_instance()
    monkeypatch.setattr(logger, 'warning', messages.append)
    points = torch.stack([blobs(seed=s, n=200) for s in range(2)])
    res = cosine_kmeans(points, 4, max_iters=1, tol=0.0, init='random',
                        generator=gen(0), names=['cow', 'dog'])
    assert res.iterations.tolist() == [1, 1]
    assert not res.converged.any()
    assert len(messages) == 2
    assert 'cow' in messages[0] and 'dog' in messages[1]
    assert f'{res.shift[0].item():.3g}' in messages[0]
    assert 'within 1 iterations' in messages[0]
    # uncapped, the same runs converge, without a warning
    messages.clear()
    res = cosine_kmeans(points, 4, max_iters=200, tol=0.0, init='random',
                        generator=gen(0))
    assert res.converged.all() and (res.iterations > 1).all()
    assert (res.shift == 0).all() and messages == []


def test_empty_cluster_reseeded_with_farthest_point():
    # 5 points, clusters 0 and 2 empty, 1 and 3 hold everything; the two
    # empties take the farthest point and the second farthest, in order
    assign = torch.tensor([[1, 1, 3, 3, 1]])
    best_sim = torch.tensor([[0.9, 0.2, 0.95, 0.5, 0.99]])
    valid = torch.ones(1, 5, dtype=torch.bool)
    centre_mask = torch.ones(1, 4, dtype=torch.bool)
    out = _reseed_empty(assign, best_sim, valid, centre_mask, 4)
    assert out.tolist() == [[1, 0, 3, 2, 1]]
    # a padded point, however far, is never taken; an invalid centre stays
    valid[0, 1] = False
    centre_mask[0, 2] = False
    out = _reseed_empty(assign, best_sim, valid, centre_mask, 4)
    assert out.tolist() == [[1, 1, 3, 0, 1]]


def test_duplicate_seeds_end_without_nan():
    # 'random' init picks two copies of the same point for most seeds: one
    # of their clusters is empty after the first assignment and is re-seeded
    a, b, c = torch.eye(3)
    points = torch.stack([a] * 8 + [b, c])
    for seed in range(6):
        res = cosine_kmeans(points, 3, max_iters=10, tol=0.0, init='random',
                            generator=gen(seed))
        assert torch.isfinite(res.centres).all()
        assert res.converged.item()
        assert sorted(map(tuple, res.centres[0].tolist())) == sorted(
            map(tuple, torch.stack([a, b, c]).tolist()))


def test_fewer_points_than_clusters():
    points = torch.zeros(2, 5, 3)
    points[0, :2] = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, :2] = True  # set 0: 2 points; set 1: none
    res = cosine_kmeans(points, 3, mask, generator=gen(0))
    assert res.centre_mask.tolist() == [[True, True, False],
                                        [False, False, False]]
    assert (res.centres[0, 2] == 0).all() and (res.centres[1] == 0).all()
    assert sorted(res.assignments[0, :2].tolist()) == [0, 1]
    assert (res.assignments[1] == -1).all()
    assert res.converged.all()


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_clusters=0), 'num_clusters'),
    (dict(max_iters=0), 'max_iters'),
    (dict(tol=-1.0), 'tol'),
    (dict(init='kmeans'), 'init'),
])
def test_bad_arguments(kwargs, match):
    args = dict(points=torch.randn(4, 2), num_clusters=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        cosine_kmeans(**args)
    with pytest.raises(ValueError, match='points'):
        cosine_kmeans(torch.randn(4), 2)
