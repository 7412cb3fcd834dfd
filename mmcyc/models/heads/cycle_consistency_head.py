# Copyright (c) mmcyc contributors. All rights reserved.
"""Cycle-consistency head of CyCSNet (paper Sect. 3.2, Eq. 3-11)."""
from typing import Dict, Optional, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ..utils.cycle_consistency import (cycle_consistency_loss,
                                       distance_mask_offsets, gather_vectors,
                                       propagate, retrieve, select_positions,
                                       target_cells)
from ..utils.cycle_views import shift_positions


@MODELS.register_module()
class CycleConsistencyHead(BaseModule):
    """L_cyc on a batch of image pairs, with DCFS selection.

    Vectors of A where the CAM of a class shared with B exceeds ``beta1`` go
    to B and back (Eq. 3-7); those whose return probability exceeds
    ``beta2`` form V^sel and are pulled back to where they started with the
    distance-weighted cross entropy of Eq. 8, 10-11. The head has no
    parameters; ``beta2`` is DCFS state owned by ``DCFSHook``, which
    overwrites the attribute every iteration from the logged ``cyc_wb_mean``
    (Eq. 9): by default the mean return probability over all the
    candidates entering the cycle, not only over V^sel (see
    ``dcfs_statistic``).

    The retrieval may land on another view of A instead of F_A itself:
    ``feat_return`` = F of another crop of A, whose cell ``(i, j) +
    return_shift`` shows cell (i, j) of the start view (see
    :mod:`~mmcyc.models.utils.cycle_views`, which says why). The start
    cells are then mapped into that view, and cells it does not show leave
    the cycle.

    With ``target_cells='cam'`` the propagation step may land only on B's
    cells where B's CAM of a shared class exceeds ``beta1`` (the caller
    gives ``cam_b``): the paper picks A's start vectors from the
    foreground "to avoid the disturbance caused by the background"
    (Sect. 3.1) but lets W^f spread over all of B, and a cycle can return
    through B's background without matching anything. Not in the paper;
    ``'all'`` (default) is its propagation.

    Call order::

        loss(feat_a, feat_b, cam_a, shared[, feat_return, return_shift,
             cam_b])
            -> forward(feat_a, feat_b, cam_a, shared, ...)
                 select_positions (beta1, max_selected,
                                   selection_buffer)     -> index, valid
                 gather_vectors(F_A)                    -> V_(x,y)
                 [target_cells(cam_b) (beta1)           -> allowed]
                 propagate(V_(x,y), F_B)  (Eq. 3-5)     -> V_i
                 retrieve(V_i, F_A or F_A')  (Eq. 6-7)  -> log W^b
                 [shift_positions: index, valid in A']
            -> loss_by_feat(log W^b, index, valid, num_candidates, (h, w))
                 cycle_consistency_loss (beta2, Eq. 8, 10-11)
                 -> {loss_cyc, cyc_num_selected, cyc_num_rejected,
                     cyc_wb_mean, cyc_wb_count, cyc_num_candidates}

    Similarities and softmaxes run in fp32 with autocast disabled, whatever
    the caller's precision. ``cam_a`` is detached (it comes from the frozen
    classifier C): no gradient ever reaches it.

    Args:
        alpha (float): Softmax scale of Eq. 4 and 7, > 0. Defaults to 20.0
            (paper).
        beta1 (float): CAM threshold of the selection, in (0, 1). Defaults
            to 0.3 (paper).
        radius (int): ``r`` of Eq. 11, >= 1. Defaults to 5 (paper): 13
            positions around the start get weights 5, 4, 3 and 1.
        beta2 (float): Initial DCFS threshold, in [0, 1]. Defaults to 0.0
            (paper: Eq. 9 starts from 0).
        max_selected (int, optional): Cap on the selected positions per pair
            (a seeded uniform random subset, see ``select_positions``) to
            bound the (N, S, h*w) memory. Defaults to None (no cap, as the
            paper).
        eps (float): Smallest divisor of the max-scaling of Eq. 4 and 7.
            Defaults to 1e-6.
        dcfs_statistic (str): The positions over which ``cyc_wb_mean``, the
            statistic of Eq. 9, averages ``W^b_(x,y)(x, y)``:
            ``'candidates'`` (default) all positions entering the cycle (CAM
            above ``beta1``, after the ``max_selected`` cap when set), or
            ``'selected'`` only V^sel (those also above ``beta2``), the
            paper's literal reading, kept for the ablation. Eq. 9 writes
            V^sel, but V^sel is itself defined by ``beta2``: its mean is
            always above ``beta2``, so with ``'selected'`` beta2 ratchets up
            until every position is rejected and training stops (measured
            on the synthetic data: |V^sel| fell to 0 within 5 epochs).
            Averaging over the candidates lets beta2 settle at the mean
            return probability, the behaviour of the paper's Fig. 4.
            ``cyc_wb_count`` holds the number of positions averaged.
        selection_buffer (str): Length S of the selection, ``'exact'``
            (default) the largest per-pair count, which costs one
            device-to-host sync per step (``int()`` of a device count); or
            ``'fixed'``: ``min(max_selected, h * w)`` (``h * w`` without
            a cap), padded and masked, so the step queues on the GPU without
            waiting. Losses and statistics are the same (the first entries
            are those of ``'exact'``; see ``select_positions``), but
            ``'fixed'`` computes the (N, S, h*w) products for all S: without
            ``max_selected`` that is every position, ``h * w / S`` times the
            work and memory of ``'exact'`` (about 5x with 20 % of the
            positions selected), and it draws the cap's random priorities
            every step. ``'exact'`` is the default because the sync costs
            one launch gap per step (the host waits for the backbone's
            forward, then queues the rest) while the padding costs the
            products (measured on CPU in ``benchmarks/RESULTS.md``); choose
            ``'fixed'`` with a ``max_selected`` that most pairs reach. In
            ``'fixed'`` mode on an accelerator the check that every pair
            shares a class is skipped (it would sync): such a pair has no
            candidate and adds nothing to the loss.
        target_cells (str): B's cells the propagation step (Eq. 3-5) runs
            over: ``'all'`` (default, the paper) or ``'cam'``, those where
            the CAM of a class shared with A exceeds ``beta1`` (a pair
            without any keeps all; see
            :func:`~mmcyc.models.utils.cycle_consistency.target_cells`).
            ``'cam'`` needs ``cam_b`` in :meth:`loss`.
        loss_weight (float): Weight of L_cyc. Defaults to 1.0 (Eq. 13).
        loss_name (str): Key of the loss; must start with ``loss_``.
            Defaults to ``'loss_cyc'``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 alpha: float = 20.0,
                 beta1: float = 0.3,
                 radius: int = 5,
                 beta2: float = 0.0,
                 max_selected: Optional[int] = None,
                 eps: float = 1e-6,
                 dcfs_statistic: str = 'candidates',
                 selection_buffer: str = 'exact',
                 target_cells: str = 'all',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_cyc',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not alpha > 0:
            raise ValueError(f'alpha must be > 0, got {alpha}')
        if not 0 < beta1 < 1:
            raise ValueError(f'beta1 must be in (0, 1), got {beta1}')
        if isinstance(radius, bool) or not isinstance(radius, int) or \
                radius < 1:
            raise ValueError(f'radius must be an int >= 1, got {radius!r}')
        if max_selected is not None and (
                isinstance(max_selected, bool)
                or not isinstance(max_selected, int) or max_selected < 1):
            raise ValueError('max_selected must be None or an int >= 1, got '
                             f'{max_selected!r}')
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        if not isinstance(loss_name, str) or not loss_name.startswith('loss_'):
            raise ValueError(
                f'loss_name must start with "loss_", got {loss_name!r}')
        self.alpha = float(alpha)
        self.beta1 = float(beta1)
        self.radius = radius
        self.beta2 = beta2
        self.max_selected = max_selected
        if dcfs_statistic not in ('candidates', 'selected'):
            raise ValueError("dcfs_statistic must be 'candidates' or "
                             f"'selected', got {dcfs_statistic!r}")
        self.dcfs_statistic = dcfs_statistic
        if selection_buffer not in ('exact', 'fixed'):
            raise ValueError("selection_buffer must be 'exact' or 'fixed', "
                             f'got {selection_buffer!r}')
        self.selection_buffer = selection_buffer
        if target_cells not in ('all', 'cam'):
            raise ValueError("target_cells must be 'all' or 'cam', got "
                             f'{target_cells!r}')
        self.target_cells = target_cells
        self.eps = float(eps)
        self.loss_weight = float(loss_weight)
        self._loss_name = loss_name
        self.num_offsets = len(distance_mask_offsets(radius)[0])

    @property
    def beta2(self) -> float:
        """DCFS threshold on ``W^b_(x,y)(x, y)``, in [0, 1]."""
        return self._beta2

    @beta2.setter
    def beta2(self, value: float) -> None:
        value = float(value)
        if not 0 <= value <= 1:
            raise ValueError(f'beta2 must be in [0, 1], got {value}')
        self._beta2 = value

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def _check_inputs(self, feat_a: torch.Tensor, feat_b: torch.Tensor,
                      cam_a: torch.Tensor, shared: torch.Tensor) -> None:
        if feat_a.dim() != 4 or feat_b.dim() != 4 or cam_a.dim() != 4:
            raise ValueError(
                'feat_a, feat_b and cam_a must be (N, *, h, w), got '
                f'{tuple(feat_a.shape)}, {tuple(feat_b.shape)}, '
                f'{tuple(cam_a.shape)}')
        n, d, h, w = feat_a.shape
        if feat_b.shape[:2] != (n, d):
            raise ValueError(
                f'feat_b {tuple(feat_b.shape)} must have the pairs and '
                f'channels of feat_a {tuple(feat_a.shape)}: expected '
                f'({n}, {d}, h_b, w_b)')
        if cam_a.shape[0] != n or cam_a.shape[2:] != (h, w):
            raise ValueError(
                f'cam_a {tuple(cam_a.shape)} must be at the resolution of '
                f'feat_a {tuple(feat_a.shape)}: expected ({n}, C, {h}, {w})')
        if shared.shape != cam_a.shape[:2]:
            raise ValueError(
                f'shared {tuple(shared.shape)} must be (N, C) = '
                f'{tuple(cam_a.shape[:2])}, like cam_a')
        if self.selection_buffer == 'fixed' and shared.device.type != 'cpu':
            return  # reading `empty` would sync the host with the device
        empty = ~shared.to(torch.bool).any(dim=1)  # (N, )
        if empty.any():
            bad = empty.nonzero().flatten().tolist()
            raise ValueError(
                f'pairs {bad} of the batch share no class (all-zero rows of '
                '`shared`); every pair must share at least one class (see '
                'PairedVOCDataset)')

    def forward(
        self,
        feat_a: torch.Tensor,
        feat_b: torch.Tensor,
        cam_a: torch.Tensor,
        shared: torch.Tensor,
        feat_return: Optional[torch.Tensor] = None,
        return_shift: Optional[torch.Tensor] = None,
        cam_b: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Selection and the A -> B -> A cycle (Eq. 3-7), in fp32.

        Args:
            feat_a (Tensor): ``F_A``, shape (N, D, h, w).
            feat_b (Tensor): ``F_B``, shape (N, D, h_b, w_b).
            cam_a (Tensor): Normalised CAM of A (Eq. 2), shape (N, C, h, w).
            shared (Tensor): Multi-hot classes of both A and B, shape (N, C).
            feat_return (Tensor, optional): ``F_A'``, F of another crop of
                A, shape (N, D, h, w), whose cell ``(i, j) + return_shift``
                shows cell (i, j) of ``feat_a``: the retrieval's view.
                Defaults to None: ``F_A`` (the paper).
            return_shift (Tensor, optional): ``(dy, dx)`` cells per pair,
                shape (N, 2); given exactly when ``feat_return`` is.
            cam_b (Tensor, optional): Normalised CAM of B (Eq. 2), shape
                (N, C, h_b, w_b); given exactly when ``target_cells`` is
                ``'cam'``. Detached.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]:

            - log_wb: ``log W^b`` over the return view, shape (N, S, h * w),
              fp32.
            - index: flat start positions in the return view, shape (N, S).
            - valid: real entries of ``index``, shape (N, S), bool.
            - num_candidates: positions above ``beta1`` per pair, before
              ``max_selected``, shape (N, ).
        """
        self._check_inputs(feat_a, feat_b, cam_a, shared)
        if (feat_return is None) != (return_shift is None):
            raise ValueError('feat_return and return_shift go together: give '
                             'both or neither')
        if feat_return is not None and (
                feat_return.shape != feat_a.shape
                or return_shift.shape != (feat_a.shape[0], 2)):
            raise ValueError(
                f'feat_return must be shaped like feat_a '
                f'{tuple(feat_a.shape)} and return_shift (N, 2), got '
                f'{tuple(feat_return.shape)} and {tuple(return_shift.shape)}')
        allowed = self._target_cells(feat_b, shared, cam_b)
        index, valid, num_candidates = select_positions(
            cam_a.detach(), shared, self.beta1, self.max_selected,
            fixed_size=self.selection_buffer == 'fixed')
        with torch.autocast(device_type=feat_a.device.type, enabled=False):
            feat_a, feat_b = feat_a.float(), feat_b.float()
            vectors = gather_vectors(feat_a, index)  # (N, S, D)
            neighbours = propagate(vectors, feat_b, self.alpha, self.eps,
                                   allowed)  # (N, S, D)
            view = feat_a if feat_return is None else feat_return.float()
            log_wb = retrieve(neighbours, view, self.alpha,
                              self.eps)  # (N, S, h * w)
        if feat_return is not None:  # the start cells, seen in A'
            index, valid = shift_positions(index, valid, return_shift,
                                           tuple(feat_a.shape[2:]))
        return log_wb, index, valid, num_candidates

    def _target_cells(self, feat_b: torch.Tensor, shared: torch.Tensor,
                      cam_b: Optional[torch.Tensor]
                      ) -> Optional[torch.Tensor]:
        """B's allowed cells (N, h_b * w_b) for ``'cam'``, else None."""
        if (cam_b is None) != (self.target_cells == 'all'):
            raise ValueError(
                f"cam_b must be given exactly when target_cells='cam' "
                f'(target_cells={self.target_cells!r}, cam_b '
                f"{'missing' if cam_b is None else 'given'})")
        if cam_b is None:
            return None
        expected = (*shared.shape, *feat_b.shape[2:])
        if tuple(cam_b.shape) != expected:
            raise ValueError(
                f'cam_b {tuple(cam_b.shape)} must be at the resolution of '
                f'feat_b {tuple(feat_b.shape)}: expected {expected}')
        return target_cells(cam_b, shared, self.beta1)

    def loss_by_feat(self, log_wb: torch.Tensor, index: torch.Tensor,
                     valid: torch.Tensor, num_candidates: torch.Tensor,
                     size: Tuple[int, int]) -> Dict[str, torch.Tensor]:
        """DCFS selection and L_cyc (Eq. 8, 10-11) from ``forward``'s output.

        Args:
            log_wb (Tensor): ``log W^b``, shape (N, S, h * w).
            index (Tensor): Flat start positions, shape (N, S).
            valid (Tensor): Real entries of ``index``, shape (N, S).
            num_candidates (Tensor): Positions above ``beta1``, shape (N, ).
            size (tuple[int, int]): A's grid ``(h, w)``.

        Returns:
            dict[str, Tensor]: ``loss_name``: ``loss_weight * L_cyc`` (an
            exact, graph-connected 0 when V^sel is empty), and detached 0-dim
            float logs: ``cyc_num_selected`` (|V^sel|),
            ``cyc_num_rejected`` (entering the cycle but not above
            ``beta2``), ``cyc_wb_mean`` (mean ``W^b_(x,y)(x, y)`` over the
            positions named by ``dcfs_statistic``, 0 when there are none;
            Eq. 9 needs it), ``cyc_wb_count`` (how many positions that mean
            is over: DCFSHook weights the ranks by it) and
            ``cyc_num_candidates`` (above ``beta1``; larger than selected +
            rejected only when ``max_selected`` drops some).
        """
        loss, keep, wb_self = cycle_consistency_loss(
            log_wb, index, valid, size, self.radius, self.beta2)
        num_selected = keep.sum().float()
        num_valid = valid.sum().float()
        averaged = keep if self.dcfs_statistic == 'selected' else valid
        wb_count = averaged.sum().float()
        wb_sum = torch.where(averaged, wb_self, wb_self.new_zeros(())).sum()
        return {
            self.loss_name: self.loss_weight * loss,
            'cyc_num_selected': num_selected,
            'cyc_num_rejected': num_valid - num_selected,
            'cyc_wb_mean': (wb_sum / wb_count.clamp(min=1)).detach(),
            'cyc_wb_count': wb_count,
            'cyc_num_candidates': num_candidates.sum().float(),
        }

    def loss(self,
             feat_a: torch.Tensor,
             feat_b: torch.Tensor,
             cam_a: torch.Tensor,
             shared: torch.Tensor,
             feat_return: Optional[torch.Tensor] = None,
             return_shift: Optional[torch.Tensor] = None,
             cam_b: Optional[torch.Tensor] = None
             ) -> Dict[str, torch.Tensor]:
        """``loss_by_feat(*forward(...))``; see the two for the arguments."""
        log_wb, index, valid, num_candidates = self.forward(
            feat_a, feat_b, cam_a, shared, feat_return, return_shift, cam_b)
        return self.loss_by_feat(log_wb, index, valid, num_candidates,
                                 tuple(feat_a.shape[2:]))
