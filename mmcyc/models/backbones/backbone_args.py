# Copyright (c) mmcyc contributors. All rights reserved.
"""The arguments every mmcyc backbone takes, checked one way."""
from typing import Sequence, Tuple, Union


def checked_out_indices(out_indices: Union[Sequence[int], int],
                        num_taps: int,
                        note: str = '') -> Tuple[int, ...]:
    """``out_indices`` as a tuple of distinct taps in ``[0, num_taps)``.

    Args:
        out_indices (Sequence[int] | int): The taps a backbone returns.
        num_taps (int): How many it has.
        note (str): Added to the error after the range, e.g.
            ``' (with_b7=False)'``.

    Raises:
        ValueError: Naming the range and the value.
    """
    if isinstance(out_indices, int):
        out_indices = (out_indices, )
    out_indices = tuple(out_indices)
    if (len(out_indices) == 0 or len(set(out_indices)) != len(out_indices)
            or not all(isinstance(i, int) and 0 <= i < num_taps
                       for i in out_indices)):
        raise ValueError(f'out_indices must be distinct ints in [0, '
                         f'{num_taps - 1}]{note}, got {out_indices}')
    return out_indices


def check_widen_factor(widen_factor: float) -> None:
    """Every layer keeps a channel: ``round(64 * widen_factor) >= 1``."""
    if not (isinstance(widen_factor, (int, float))
            and round(64 * widen_factor) >= 1):
        raise ValueError('widen_factor must be a number >= 1/64 (every '
                         f'layer keeps a channel), got {widen_factor!r}')
