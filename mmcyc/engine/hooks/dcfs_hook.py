# Copyright (c) mmcyc contributors. All rights reserved.
"""Dynamic Correlation Feature Selection: the schedule of beta2 (Eq. 9)."""
import logging
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

MODES = ('momentum', 'dynamic', 'fixed')


@HOOKS.register_module()
class DCFSHook(Hook):
    """Owns beta2, the cycle-consistency threshold of CyCSNet (Eq. 9).

    A position (x, y) of A enters V^sel only if ``W^b(x, y) > beta2``. beta2
    starts at ``init_value`` and after every train iteration becomes::

        momentum: beta2 <- kappa * beta2 + (1 - kappa) * stat    (Eq. 9)
        dynamic:  beta2 <- stat
        fixed:    beta2 stays init_value                 (Table 5 baseline)

    where ``stat`` is the mean return probability ``W^b(x, y)`` that the
    model logs (``mean_key``), over all ranks, weighted by each rank's
    count of averaged positions (``count_key``), so beta2 is identical on
    every rank. Which positions are averaged is the model's choice: with
    ``CycleConsistencyHead`` (``dcfs_statistic``) by default all the
    candidates entering the cycle (CAM above beta1, after its
    ``max_selected`` cap), not only V^sel;
    ``'selected'``, the literal reading of Eq. 9 (V^sel), is kept for the
    ablation: its mean is always above beta2, so beta2 ratchets up until
    nothing is selected. An iteration where no rank averaged any position
    leaves beta2 unchanged.

    Call order::

        before_train_iter: model.<target> = beta2; log 'train/beta2'
        model.train_step   -> outputs[mean_key], outputs[count_key]
        after_train_iter:  all_reduce([mean * count, count]) -> update beta2
        before_save_checkpoint / after_load_checkpoint: checkpoint['dcfs']

    The model's ``train_step`` outputs (its log_vars) must hold, every
    iteration, ``mean_key`` (mean of W^b(x, y) over this rank's averaged
    positions, any value when there are none) and ``count_key`` (how many
    positions that is on this rank, 0 when none).

    Note:
        With ``mode='fixed'`` a loaded checkpoint's beta2 is ignored: beta2
        stays ``init_value``.

    Note:
        Reading the statistic (``float()`` of 0-dim device tensors) syncs
        the host with the device, but after the step: mmengine's
        ``RuntimeInfoHook`` (priority VERY_HIGH, before this hook) has
        already read every logged value the same way, so the device is idle
        by then and nothing inside ``train_step`` waits. beta2 reaches the
        head as a Python float, a scalar operand of its comparison (no copy
        to the device).

    Args:
        init_value (float): Initial beta2, in [0, 1]; the paper's is 0.
            Defaults to 0.0.
        kappa (float): Momentum weight kappa of Eq. 9, in [0, 1). The paper
            uses 0.95. Defaults to 0.95.
        mode (str): 'momentum' (Eq. 9), 'dynamic' or 'fixed'.
            Defaults to 'momentum'.
        target (str): Dotted attribute path of beta2 in the (unwrapped)
            model; a tensor attribute is filled in place. Defaults to
            'head.beta2'.
        mean_key (str): Key of the mean return probability W^b(x, y) in the
            outputs (``CycleConsistencyHead`` averages it over the positions
            its ``dcfs_statistic`` names). Defaults to 'cyc_wb_mean'.
        count_key (str): Key of how many positions that mean is over; the
            ranks are weighted by it. Defaults to 'cyc_wb_count'.
    """

    priority = 'NORMAL'

    def __init__(self,
                 init_value: float = 0.0,
                 kappa: float = 0.95,
                 mode: str = 'momentum',
                 target: str = 'head.beta2',
                 mean_key: str = 'cyc_wb_mean',
                 count_key: str = 'cyc_wb_count') -> None:
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if not 0 <= kappa < 1:
            raise ValueError(f'kappa must be in [0, 1), got {kappa}')
        if not 0 <= init_value <= 1:
            raise ValueError(f'init_value must be in [0, 1], got {init_value}')
        if not target:
            raise ValueError(f'target must be a dotted attribute path, got '
                             f'{target!r}')
        self.init_value = float(init_value)
        self.kappa = float(kappa)
        self.mode = mode
        self.target = target
        self.mean_key = mean_key
        self.count_key = count_key
        self.beta2 = self.init_value

    def update(self, mean: float, count: float) -> float:
        """Update beta2 with this rank's statistic; collective when dist.

        Every rank must call it at the same iteration (it all-reduces).

        Args:
            mean (float): Mean of W^b(x, y) over this rank's averaged
                positions (the candidates or V^sel, see ``mean_key``).
            count (float): How many positions ``mean`` is over on this
                rank.

        Returns:
            float: The new beta2.
        """
        if self.mode == 'fixed':
            return self.beta2
        count = float(count)
        if count < 0:
            raise ValueError(f'{self.count_key} must be >= 0, got {count}')
        # [sum of W^b over the positions, their count]; 0 * nan would
        # poison the sum
        stats = torch.tensor(
            [float(mean) * count if count > 0 else 0., count],
            dtype=torch.float64)
        all_reduce(stats, op='sum')
        total, num = stats.tolist()
        if num > 0:
            stat = total / num
            if self.mode == 'dynamic':
                self.beta2 = stat
            else:
                self.beta2 = self.kappa * self.beta2 + (1 - self.kappa) * stat
        return self.beta2

    def _write(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        *path, name = self.target.split('.')
        obj = model
        for part in path:
            obj = getattr(obj, part, None)
        if obj is None or not hasattr(obj, name):
            raise AttributeError(
                f'DCFSHook: the model {type(model).__name__} has no attribute '
                f'{self.target!r} to write beta2 to; set target= to its path')
        current = getattr(obj, name)
        if isinstance(current, torch.Tensor):
            current.fill_(self.beta2)
        else:
            setattr(obj, name, self.beta2)

    def before_train(self, runner) -> None:
        """Write beta2 (initial or resumed) to the model."""
        self._write(runner)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """Write beta2 to the model and log it as 'train/beta2'."""
        self._write(runner)
        runner.message_hub.update_scalar('train/beta2', self.beta2)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Update beta2 from the iteration's W^b statistic."""
        if self.mode == 'fixed':
            return
        missing = [
            k for k in (self.mean_key, self.count_key) if k not in
            (outputs or {})
        ]
        if missing:
            raise KeyError(
                f'DCFSHook: train_step outputs have no {missing}; expected '
                f'{self.mean_key!r} (mean W^b(x, y)) and '
                f'{self.count_key!r} (positions averaged) in the log_vars, '
                'got '
                f'{sorted(outputs or {})}')
        self.update(outputs[self.mean_key], outputs[self.count_key])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save beta2 as ``checkpoint['dcfs']``."""
        checkpoint['dcfs'] = dict(beta2=self.beta2, mode=self.mode)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore beta2 from ``checkpoint['dcfs']`` (not in 'fixed' mode)."""
        state = checkpoint.get('dcfs')
        if state is None:
            print_log(
                "DCFSHook: the checkpoint has no 'dcfs' entry; beta2 stays "
                f'{self.beta2}',
                logger='current',
                level=logging.WARNING)
            return
        if state.get('mode') != self.mode:
            print_log(
                f"DCFSHook: the checkpoint's beta2 comes from mode "
                f"{state.get('mode')!r}, this run uses {self.mode!r}",
                logger='current',
                level=logging.WARNING)
        if self.mode != 'fixed':
            self.beta2 = float(state['beta2'])
