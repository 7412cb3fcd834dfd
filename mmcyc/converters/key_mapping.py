# Copyright (c) mmcyc contributors. All rights reserved.
"""What every psa key converter shares: the report, the head-layout table
lookup, the renaming loop and the saved checkpoint.

A converter describes its network by a backbone key set and a table of head
keys per layout (``{'imagenet': {}, 'cls': {...}, 'aff': {...}}``); the chain
is ``unwrap -> detect_head_layout -> rename_state_dict -> save_converted``
(:mod:`.psa_keys` for ResNet-38, :mod:`.psa_vgg16_keys` for VGG-16).
"""
import os
import os.path as osp
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Collection, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from mmcyc.utils.state_dict_check import unwrap_state_dict

BACKBONE_PREFIX = 'backbone.'


@dataclass
class ConversionReport:
    """What a conversion did.

    Attributes:
        source (str): The converted file (or a description).
        layout (str): The source's layout (``'imagenet'``, ``'cls'``,
            ``'aff'``).
        converted (int): Number of keys written.
        dropped (list[str]): Source keys intentionally left out (ImageNet
            classifier).
        unknown (list[str]): Source keys no layout rule knows.
        added (list[str]): Keys created (``num_batches_tracked`` buffers the
            source lacks).
        absent (list[str]): Expected psa keys the source lacks.
    """
    source: str
    layout: str
    converted: int = 0
    dropped: List[str] = field(default_factory=list)
    unknown: List[str] = field(default_factory=list)
    added: List[str] = field(default_factory=list)
    absent: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f'{self.source}: layout {self.layout!r}, {self.converted} keys '
            'converted'
        ]
        if self.added:
            lines.append(f'  added {len(self.added)} num_batches_tracked '
                         'buffers (set to 0)')
        for title, keys in (('dropped', self.dropped),
                            ('unknown', self.unknown), ('absent from source',
                                                        self.absent)):
            if keys:
                lines.append(f'  {title} ({len(keys)}): ' + ', '.join(keys))
        return '\n'.join(lines)


def unknown_keys_error(source: str,
                       layout: str,
                       unknown: List[str],
                       weights: str = 'psa') -> ValueError:
    """The error for source keys that fit no rule of ``layout``.

    Args:
        source (str): The converted file, named first.
        layout (str): The layout tried.
        unknown (list[str]): The keys that fit no rule.
        weights (str): Whose weights, as the message names them
            (``'psa'``, ``'psa VGG-16'``). Defaults to 'psa'.
    """
    return ValueError(
        f'{source}: {len(unknown)} key(s) fit no rule of the {weights} '
        f'{layout!r} layout: {", ".join(unknown)}. Check the layout '
        '(imagenet / cls / aff) or pass allow_unknown=True '
        '(--allow-unknown) to drop them.')


def detect_head_layout(keys: Collection[str],
                       head_keys: Mapping[str, Mapping[str, str]],
                       weights: str = 'psa') -> str:
    """Guess a state dict's layout from the head keys it holds.

    Args:
        keys (Collection[str]): The (``module.``-free) keys.
        head_keys (Mapping[str, Mapping[str, str]]): Layout -> (source head
            key -> mmcyc key); a layout whose heads are empty is the
            fallback ``'imagenet'``.
        weights (str): Whose weights, for the error. Defaults to 'psa'.

    Returns:
        str: The only layout whose head keys occur, else ``'imagenet'``.

    Raises:
        ValueError: If the keys fit the heads of more than one layout.
    """
    keys = set(keys)
    found = [name for name, heads in head_keys.items() if keys & set(heads)]
    if len(found) > 1:
        raise ValueError(f'ambiguous {weights} layout: the keys fit {found}; '
                         'pass the layout explicitly')
    return found[0] if found else 'imagenet'


def rename_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    layout: str,
    head_keys: Mapping[str, Mapping[str, str]],
    backbone_keys: Collection[str],
    expected_backbone_keys: Sequence[str],
    allow_unknown: bool = False,
    source: str = '<state_dict>',
    weights: str = 'psa',
    drop: Optional[re.Pattern] = None
) -> Tuple['OrderedDict[str, torch.Tensor]', ConversionReport]:
    """Rename a psa-keyed state dict to mmcyc keys.

    Backbone keys get the ``backbone.`` prefix, head keys are renamed by
    ``head_keys[layout]``, keys matching ``drop`` in the ``imagenet``
    layout are dropped, anything else is unknown.

    Args:
        state_dict (Mapping[str, Tensor]): Bare or ``{'state_dict': ...}``;
            a ``module.`` prefix is stripped.
        layout (str): ``'auto'`` or one of ``head_keys``.
        head_keys (Mapping[str, Mapping[str, str]]): See
            :func:`detect_head_layout`.
        backbone_keys (Collection[str]): The source's backbone keys.
        expected_backbone_keys (Sequence[str]): Those a complete source has
            (``report.absent`` lists the missing ones and missing heads).
        allow_unknown (bool): Drop unknown keys instead of raising.
            Defaults to False.
        source (str): Name used in the report and errors.
        weights (str): Whose weights, for the errors. Defaults to 'psa'.
        drop (re.Pattern, optional): Keys of an ``imagenet`` source left out
            on purpose (its ImageNet classifier). Defaults to None.

    Returns:
        tuple[OrderedDict, ConversionReport]: mmcyc state dict and report.
    """
    state_dict = unwrap_state_dict(state_dict, source)
    layouts = tuple(head_keys)
    if layout == 'auto':
        layout = detect_head_layout(state_dict, head_keys, weights)
    if layout not in layouts:
        raise ValueError(f"layout must be 'auto' or one of {layouts}, got "
                         f'{layout!r}')
    heads = head_keys[layout]
    report = ConversionReport(source=source, layout=layout)
    out = OrderedDict()
    for key, value in state_dict.items():
        if key in backbone_keys:
            out[BACKBONE_PREFIX + key] = value
        elif key in heads:
            out[heads[key]] = value
        elif drop is not None and layout == 'imagenet' and drop.match(key):
            report.dropped.append(key)
        else:
            report.unknown.append(key)
    if report.unknown and not allow_unknown:
        raise unknown_keys_error(source, layout, report.unknown, weights)
    report.absent = [
        k for k in list(expected_backbone_keys) + list(heads)
        if k not in state_dict
    ]
    report.converted = len(out)
    return out, report


def save_converted(state_dict: Mapping[str, torch.Tensor],
                   report: ConversionReport,
                   src: str,
                   dst: str,
                   converter: str,
                   listed: Sequence[str] = ('unknown', )) -> None:
    """Save ``{'state_dict': ..., 'meta': ...}`` to ``dst``.

    ``mmengine.runner.load_checkpoint``, ``load_from=dst`` and
    ``init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='backbone.')``
    read it.

    Args:
        state_dict (Mapping[str, Tensor]): The converted weights.
        report (ConversionReport): Its report.
        src (str): The source file (its name goes into the meta).
        dst (str): Output path (parent folders are created).
        converter (str): The tool, for the meta.
        listed (Sequence[str]): Report lists kept in the meta as
            ``<name>_keys``. Defaults to ('unknown', ).
    """
    meta = dict(
        converted_from=osp.basename(src),
        converter=converter,
        layout=report.layout)
    for name in listed:
        meta[f'{name}_keys'] = list(getattr(report, name))
    if osp.dirname(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
    torch.save({'state_dict': state_dict, 'meta': meta}, dst)
