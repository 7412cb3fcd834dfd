import pytest
import torch
from mmseg.registry import MODELS

from mmcyc.models.heads import CycleConsistencyHead

LOG_KEYS = ('cyc_num_selected', 'cyc_num_rejected', 'cyc_wb_mean',
            'cyc_wb_count', 'cyc_num_candidates')


def brute_force_cycle(feat_a, feat_b, cam_a, shared, alpha=20.0, beta1=0.3,
                      beta2=0.0, radius=5, feat_r=None, shift=None,
                      cam_b=None):
    """Eq. 3-11 one position at a time, with a dense Eq. 10-11 mask.

    Returns ``{(n, p): (W^b, loss term or None)}`` for every position p of A
    above ``beta1``; the term is None for positions DCFS rejects. The max
    is guarded as the head documents: divide by ``max(|max|, 1e-6)``. With
    a return view ``feat_r`` (A shifted by ``shift`` cells) the retrieval
    runs on it, p is keyed by its cell in that view, and starts shifted out
    of the view are left out. With ``cam_b`` W^f runs over B's cells whose
    CAM of a shared class exceeds ``beta1`` (all of them if there is none),
    taken one by one.
    """
    _, _, height, width = feat_a.shape
    out = {}
    for n in range(feat_a.shape[0]):
        flat_a, flat_b = feat_a[n].flatten(1), feat_b[n].flatten(1)
        flat_r = flat_a if feat_r is None else feat_r[n].flatten(1)
        cells_b = list(range(flat_b.shape[1]))
        if cam_b is not None:
            cells_b = [
                q for q in cells_b if max(
                    cam_b[n, c].flatten()[q] for c in range(cam_b.shape[1])
                    if shared[n, c] > 0) > beta1
            ] or cells_b
        for p in range(height * width):
            y, x = divmod(p, width)
            cams = [cam_a[n, c, y, x] for c in range(cam_a.shape[1])
                    if shared[n, c] > 0]
            if max(cams) <= beta1:
                continue
            v = flat_a[:, p]
            if feat_r is not None:
                y, x = y + shift[n][0], x + shift[n][1]
                if not (0 <= y < height and 0 <= x < width):
                    continue
                p = y * width + x
            wf = v @ flat_b[:, cells_b]  # Eq. 3, on the allowed cells
            wf = torch.softmax(alpha * wf / max(wf.max().abs(), 1e-6), 0)
            vi = flat_b[:, cells_b] @ wf  # Eq. 5
            wb = vi @ flat_r  # Eq. 6
            logits = alpha * wb / max(wb.max().abs(), 1e-6)  # Eq. 7
            wb, log_wb = torch.softmax(logits, 0), torch.log_softmax(logits, 0)
            term = None
            if wb[p] > beta2:
                mask = torch.zeros(height * width)
                for q in range(height * width):
                    i, j = divmod(q, width)
                    dist = (y - i)**2 + (x - j)**2  # Eq. 10
                    mask[q] = radius - dist if dist < radius else 0  # Eq. 11
                term = -(mask * log_wb).sum()  # Eq. 8
            out[(n, p)] = (wb, term)
    return out


def make_inputs(seed=0, n=2, d=4, size=(5, 5), size_b=None, sign_b=1.0):
    gen = torch.Generator().manual_seed(seed)
    feat_a = torch.rand(n, d, *size, generator=gen)
    feat_b = sign_b * torch.rand(n, d, *(size_b or size), generator=gen)
    cam_a = torch.rand(n, 3, *size, generator=gen)
    shared = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])[:n]
    return feat_a, feat_b, cam_a, shared


def check_against_brute_force(head, feat_a, feat_b, cam_a, shared):
    ref = brute_force_cycle(feat_a, feat_b, cam_a, shared, head.alpha,
                            head.beta1, head.beta2, head.radius)
    log_wb, index, valid, num_candidates = head(feat_a, feat_b, cam_a, shared)
    seen = set()
    for n, s in valid.nonzero().tolist():
        p = index[n, s].item()
        seen.add((n, p))
        assert torch.allclose(
            log_wb[n, s].exp(), ref[(n, p)][0], rtol=1e-4, atol=1e-6)
    assert seen == set(ref)
    terms = [t for _, t in ref.values() if t is not None]
    losses = head.loss(feat_a, feat_b, cam_a, shared)
    expected = torch.stack(terms).mean() if terms else torch.tensor(0.)
    assert torch.allclose(losses['loss_cyc'], expected, rtol=1e-5)
    assert losses['cyc_num_selected'].item() == len(terms)
    assert losses['cyc_num_rejected'].item() == len(ref) - len(terms)
    assert losses['cyc_num_candidates'].item() == len(ref)
    # Eq. 9's statistic: over V^sel ('selected') or every candidate
    wb_avg = [w[p] for (_, p), (w, t) in ref.items()
              if t is not None or head.dcfs_statistic == 'candidates']
    wb_mean = torch.stack(wb_avg).mean() if wb_avg else torch.tensor(0.)
    assert torch.allclose(losses['cyc_wb_mean'], wb_mean, atol=1e-6)
    assert losses['cyc_wb_count'].item() == len(wb_avg)
    return ref, losses


@pytest.mark.parametrize('statistic', ['candidates', 'selected'])
def test_matches_brute_force_with_dcfs_rejections(statistic):
    head = CycleConsistencyHead(dcfs_statistic=statistic)
    inputs = make_inputs()
    ref = brute_force_cycle(*inputs)
    returns = sorted(w[p].item() for (_, p), (w, _) in ref.items())
    half = len(returns) // 2  # reject about half, away from a tie
    head.beta2 = (returns[half - 1] + returns[half]) / 2
    _, losses = check_against_brute_force(head, *inputs)
    assert 0 < losses['cyc_num_selected'] < losses['cyc_num_candidates']


def test_matches_brute_force_other_settings_and_b_size():
    head = CycleConsistencyHead(alpha=5.0, beta1=0.5, radius=3)
    check_against_brute_force(
        head, *make_inputs(seed=3, d=6, size=(4, 6), size_b=(3, 5)))


def test_nonpositive_max_is_finite_and_order_preserving():
    # F_A >= 0, F_B <= 0: every W^f and W^b score is negative
    head = CycleConsistencyHead()
    inputs = make_inputs(seed=5, sign_b=-1.0)
    ref, losses = check_against_brute_force(head, *inputs)
    assert torch.isfinite(losses['loss_cyc'])
    feat_a, feat_b, _, _ = inputs
    log_wb, index, _, _ = head(*inputs)
    flat_a, flat_b = feat_a[0].flatten(1), feat_b[0].flatten(1)
    wf = flat_a[:, index[0, 0]] @ flat_b  # Eq. 3
    wb = (flat_b @ torch.softmax(20 * wf / wf.max().abs(), 0)) @ flat_a
    assert (wf < 0).all() and (wb < 0).all()
    # guarded scaling is monotone: W^b keeps the order of the raw scores
    assert torch.equal(log_wb[0, 0].argsort(), wb.argsort())


def test_max_selected_caps_and_matches_brute_force_on_subset():
    torch.manual_seed(0)
    head = CycleConsistencyHead(max_selected=4)
    inputs = make_inputs()
    ref = brute_force_cycle(*inputs)
    log_wb, index, valid, num_candidates = head(*inputs)
    assert index.shape[1] == 4 and valid.all()
    torch.manual_seed(0)
    losses = head.loss(*inputs)
    terms = [ref[(n, index[n, s].item())][1] for n in range(2)
             for s in range(4)]
    assert torch.allclose(losses['loss_cyc'], torch.stack(terms).mean())
    assert losses['cyc_num_selected'] + losses['cyc_num_rejected'] == 8
    assert losses['cyc_num_candidates'] == len(ref)


def test_output_dict_and_gradients():
    head = CycleConsistencyHead(loss_weight=0.5, loss_name='loss_cycle')
    feat_a, feat_b, cam_a, shared = make_inputs()
    feat_a.requires_grad_()
    feat_b.requires_grad_()
    cam_a.requires_grad_()
    losses = head.loss(feat_a, feat_b, cam_a, shared)
    assert set(losses) == {'loss_cycle', *LOG_KEYS}
    for key in LOG_KEYS:
        assert 'loss' not in key
        value = losses[key]
        assert value.dim() == 0 and value.dtype == torch.float32
        assert not value.requires_grad
    reference = CycleConsistencyHead().loss(feat_a, feat_b, cam_a, shared)
    assert torch.allclose(losses['loss_cycle'], 0.5 * reference['loss_cyc'])
    losses['loss_cycle'].backward()
    for feat in (feat_a, feat_b):
        assert feat.grad is not None and torch.isfinite(feat.grad).all()
        assert feat.grad.abs().sum() > 0
    assert cam_a.grad is None  # detached: C is frozen


@pytest.mark.parametrize('case', ['no_selection', 'all_rejected'])
def test_empty_selection_gives_connected_zero(case):
    head = CycleConsistencyHead()
    feat_a, feat_b, cam_a, shared = make_inputs()
    if case == 'no_selection':
        cam_a = cam_a * 0.3  # nothing strictly above beta1
    else:
        head.beta2 = 1.0  # W^b(x, y) <= 1 is never above it
    feat_a.requires_grad_()
    feat_b.requires_grad_()
    losses = head.loss(feat_a, feat_b, cam_a, shared)
    assert losses['loss_cyc'].item() == 0
    assert losses['cyc_num_selected'] == 0
    candidates = losses['cyc_num_candidates'].item()
    # the DCFS statistic averages the candidates (none without selection)
    assert losses['cyc_wb_count'] == candidates
    assert (losses['cyc_wb_mean'] == 0) == (case == 'no_selection')
    assert (candidates == 0) == (case == 'no_selection')
    assert losses['cyc_num_rejected'] == candidates
    losses['loss_cyc'].backward()
    assert torch.equal(feat_a.grad, torch.zeros_like(feat_a))
    assert torch.isfinite(feat_b.grad).all()


def test_bf16_autocast_close_to_fp32():
    head = CycleConsistencyHead()
    feat_a, feat_b, cam_a, shared = make_inputs(d=16, size=(8, 8))
    fp32 = head.loss(feat_a, feat_b, cam_a, shared)['loss_cyc']
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(feat_a.bfloat16(), feat_b.bfloat16(), cam_a,
                           shared)
    assert losses['loss_cyc'].dtype == torch.float32
    assert torch.isfinite(losses['loss_cyc'])
    assert torch.allclose(losses['loss_cyc'], fp32, rtol=0.03)


@pytest.mark.parametrize('kwargs, match', [
    (dict(alpha=0), r'alpha must be > 0, got 0'),
    (dict(beta1=1.0), r'beta1 must be in \(0, 1\), got 1.0'),
    (dict(beta1=-0.1), r'beta1 must be in \(0, 1\), got -0.1'),
    (dict(radius=0), r'radius must be an int >= 1, got 0'),
    (dict(radius=2.5), r'radius must be an int >= 1, got 2.5'),
    (dict(beta2=1.5), r'beta2 must be in \[0, 1\], got 1.5'),
    (dict(max_selected=0), r'max_selected must be None or an int >= 1, got 0'),
    (dict(eps=0.0), r'eps must be > 0, got 0.0'),
    (dict(loss_name='cyc'), r'loss_name must start with "loss_", got .cyc.'),
    (dict(dcfs_statistic='all'), r"dcfs_statistic must be .* got 'all'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CycleConsistencyHead(**kwargs)


def test_beta2_setter_validates():
    head = CycleConsistencyHead()
    head.beta2 = torch.tensor(0.25)  # a hook may hand over a 0-dim tensor
    assert head.beta2 == 0.25 and isinstance(head.beta2, float)
    with pytest.raises(ValueError, match=r'beta2 must be in \[0, 1\], got -1'):
        head.beta2 = -1.0


def test_bad_inputs():
    head = CycleConsistencyHead()
    feat_a, feat_b, cam_a, shared = make_inputs()
    with pytest.raises(ValueError, match=r'feat_b \(2, 3, 5, 5\)'):
        head.loss(feat_a, feat_b[:, :3], cam_a, shared)
    with pytest.raises(ValueError, match=r'expected \(2, C, 5, 5\)'):
        head.loss(feat_a, feat_b, cam_a[..., :4], shared)
    with pytest.raises(ValueError, match=r'shared \(2, 2\) must be \(N, C\)'):
        head.loss(feat_a, feat_b, cam_a, shared[:, :2])
    no_shared = shared.clone()
    no_shared[1] = 0
    with pytest.raises(ValueError, match=r'pairs \[1\] .* share no class'):
        head.loss(feat_a, feat_b, cam_a, no_shared)


def test_build_from_config():
    head = MODELS.build(
        dict(type='CycleConsistencyHead', alpha=10.0, beta1=0.4, radius=2,
             max_selected=100, loss_weight=2.0))
    assert isinstance(head, CycleConsistencyHead)
    assert (head.alpha, head.beta1, head.radius, head.beta2) == (10.0, 0.4, 2,
                                                                 0.0)
    assert head.num_offsets == 5 and head.loss_name == 'loss_cyc'


@pytest.mark.parametrize('max_selected', [None, 4])
def test_fixed_selection_buffer_gives_the_exact_results(max_selected):
    feat_a, feat_b, cam_a, shared = make_inputs(seed=5, n=2, d=8,
                                                size=(6, 7))
    results = {}
    for mode in ('exact', 'fixed'):
        head = CycleConsistencyHead(beta2=0.02, max_selected=max_selected,
                                    selection_buffer=mode)
        a = feat_a.clone().requires_grad_()
        b = feat_b.clone().requires_grad_()
        torch.manual_seed(0)  # the cap's random subset
        losses = head.loss(a, b, cam_a, shared)
        losses['loss_cyc'].backward()
        results[mode] = (losses, a.grad, b.grad)
    (exact, grad_a, grad_b), (fixed, fixed_a, fixed_b) = results.values()
    assert fixed.keys() == exact.keys()
    assert exact['cyc_num_selected'] > 0 and exact['cyc_num_rejected'] > 0
    for key in exact:
        assert torch.allclose(fixed[key], exact[key], rtol=1e-6,
                              atol=1e-7), key
    # the padded rows add exact zeros, in another summation order
    for fixed_grad, grad in ((fixed_a, grad_a), (fixed_b, grad_b)):
        assert (fixed_grad - grad).abs().max() <= 1e-6 * grad.abs().max()


def test_fixed_selection_buffer_forward_shapes():
    feat_a, feat_b, cam_a, shared = make_inputs(size=(5, 5))
    head = CycleConsistencyHead(selection_buffer='fixed')
    log_wb, index, valid, _ = head(feat_a, feat_b, cam_a, shared)
    assert log_wb.shape == (2, 25, 25) and index.shape == valid.shape == (2,
                                                                          25)
    with pytest.raises(ValueError, match=r"'exact' or 'fixed', got 'auto'"):
        CycleConsistencyHead(selection_buffer='auto')


def test_return_view_matches_brute_force():
    head = CycleConsistencyHead()
    feat_a, feat_b, cam_a, shared = make_inputs(seed=7, size=(5, 6))
    feat_r = torch.rand(feat_a.shape, generator=torch.Generator().manual_seed(
        8))
    shift = torch.tensor([[1, -2], [0, 3]])
    ref = brute_force_cycle(feat_a, feat_b, cam_a, shared, feat_r=feat_r,
                            shift=shift.tolist())
    log_wb, index, valid, num_candidates = head(
        feat_a, feat_b, cam_a, shared, feat_return=feat_r,
        return_shift=shift)
    seen = {(n, index[n, s].item()) for n, s in valid.nonzero().tolist()}
    assert seen == set(ref)
    for n, s in valid.nonzero().tolist():
        wb = ref[(n, index[n, s].item())][0]
        assert torch.allclose(log_wb[n, s].exp(), wb, rtol=1e-4, atol=1e-6)
    losses = head.loss(feat_a, feat_b, cam_a, shared, feat_return=feat_r,
                       return_shift=shift)
    expected = torch.stack([t for _, t in ref.values()]).mean()
    assert torch.allclose(losses['loss_cyc'], expected, rtol=1e-5)
    # the starts shifted out of the view leave the cycle, not the count of
    # candidates above beta1
    plain = brute_force_cycle(feat_a, feat_b, cam_a, shared)
    assert losses['cyc_num_candidates'] == len(plain) > len(ref)
    assert losses['cyc_wb_count'] == len(ref)


def test_position_codes_solve_the_plain_cycle_but_not_the_shifted_one():
    """Features that code only a cell's absolute position (the same one-hot
    code in every image, whatever it shows) bring the plain A -> B -> A
    cycle back to its start; A' shifted by one cell shows the walk missing
    its start, since the content moved and the codes did not."""
    height, width = 4, 4
    code = torch.eye(height * width).view(1, height * width, height, width)
    feat_a, feat_b = code.clone(), code.clone()
    cam_a = torch.ones(1, 1, height, width)
    shared = torch.ones(1, 1)
    head = CycleConsistencyHead(alpha=20.0)
    plain = head.loss(feat_a, feat_b, cam_a, shared)
    assert plain['cyc_wb_mean'] > 0.99
    shift = torch.tensor([[1, 1]])
    shifted = head.loss(feat_a, feat_b, cam_a, shared, feat_return=code,
                        return_shift=shift)
    assert shifted['cyc_wb_mean'] < 0.01
    # features that follow the content (A' = A moved by the shift) return
    moved = torch.roll(code, shifts=(1, 1), dims=(2, 3))
    content = head.loss(feat_a, feat_b, cam_a, shared, feat_return=moved,
                        return_shift=shift)
    assert content['cyc_wb_mean'] > 0.99


def test_return_view_bad_inputs():
    head = CycleConsistencyHead()
    feat_a, feat_b, cam_a, shared = make_inputs()
    with pytest.raises(ValueError, match='give both or neither'):
        head.loss(feat_a, feat_b, cam_a, shared, feat_return=feat_a)
    with pytest.raises(ValueError, match=r'shaped like feat_a \(2, 4, 5, 5\)'):
        head.loss(feat_a, feat_b, cam_a, shared, feat_return=feat_a[:, :2],
                  return_shift=torch.zeros(2, 2, dtype=torch.long))


def test_target_cells_cam_matches_brute_force():
    """W^f restricted to B's CAM above beta1, against the cycle computed
    one position at a time over the allowed cells only; pair 1 has no
    allowed cell and keeps all of B (the paper's propagation)."""
    head = CycleConsistencyHead(target_cells='cam')
    feat_a, feat_b, cam_a, shared = make_inputs(seed=5, size=(5, 6),
                                                size_b=(4, 5))
    gen = torch.Generator().manual_seed(6)
    cam_b = torch.rand(2, 3, 4, 5, generator=gen)
    cam_b[1] *= 0.25  # below beta1 = 0.3 everywhere
    ref = brute_force_cycle(feat_a, feat_b, cam_a, shared, cam_b=cam_b)
    log_wb, index, valid, _ = head(feat_a, feat_b, cam_a, shared,
                                   cam_b=cam_b)
    assert {(n, index[n, s].item())
            for n, s in valid.nonzero().tolist()} == set(ref)
    for n, s in valid.nonzero().tolist():
        wb = ref[(n, index[n, s].item())][0]
        assert torch.allclose(log_wb[n, s].exp(), wb, rtol=1e-4, atol=1e-6)
    losses = head.loss(feat_a, feat_b, cam_a, shared, cam_b=cam_b)
    expected = torch.stack([t for _, t in ref.values()]).mean()
    assert torch.allclose(losses['loss_cyc'], expected, rtol=1e-5)
    # the restriction changed pair 0 and left pair 1 as the paper's
    plain = brute_force_cycle(feat_a, feat_b, cam_a, shared)
    for (n, p), (wb, _) in ref.items():
        same = torch.allclose(wb, plain[(n, p)][0], rtol=1e-4, atol=1e-6)
        assert same == (n == 1)
    # a CAM above beta1 on every cell of B is the paper's cycle
    everywhere = head.loss(feat_a, feat_b, cam_a, shared,
                           cam_b=torch.ones_like(cam_b))
    paper = CycleConsistencyHead().loss(feat_a, feat_b, cam_a, shared)
    assert torch.allclose(everywhere['loss_cyc'], paper['loss_cyc'])


def test_target_cells_cam_sends_no_gradient_to_excluded_cells():
    head = CycleConsistencyHead(target_cells='cam')
    feat_a, feat_b, cam_a, shared = make_inputs(seed=2)
    feat_a.requires_grad_(True)
    feat_b.requires_grad_(True)
    cam_b = torch.zeros(2, 3, 5, 5)
    cam_b[0, 0, 1:3, 1:4] = 1.0  # class 0 (shared by pair 0)
    cam_b[0, 1, 3:, :] = 1.0  # class 1, not shared by pair 0: ignored
    cam_b[1, 1, 0, :] = 1.0
    head.loss(feat_a, feat_b, cam_a, shared,
              cam_b=cam_b)['loss_cyc'].backward()
    assert torch.isfinite(feat_a.grad).all()
    grad_b = feat_b.grad.abs().sum(dim=1)  # (2, 5, 5)
    allowed = torch.zeros(2, 5, 5, dtype=torch.bool)
    allowed[0, 1:3, 1:4] = True
    allowed[1, 0, :] = True
    assert (grad_b[~allowed] == 0).all()
    assert (grad_b[allowed] > 0).all()


def test_target_cells_bad_inputs():
    feat_a, feat_b, cam_a, shared = make_inputs()
    with pytest.raises(ValueError, match="'all' or 'cam', got 'fg'"):
        CycleConsistencyHead(target_cells='fg')
    with pytest.raises(ValueError, match=r"target_cells='cam'.*missing"):
        CycleConsistencyHead(target_cells='cam').loss(feat_a, feat_b, cam_a,
                                                      shared)
    with pytest.raises(ValueError, match=r"target_cells='all'.*given"):
        CycleConsistencyHead().loss(feat_a, feat_b, cam_a, shared,
                                    cam_b=cam_a)
    with pytest.raises(ValueError, match=r'expected \(2, 3, 5, 5\)'):
        CycleConsistencyHead(target_cells='cam').loss(
            feat_a, feat_b, cam_a, shared, cam_b=cam_a[:, :2])
