# Copyright (c) mmcyc contributors. All rights reserved.
"""The command line the checkpoint converters in ``tools/model_converters``
share: ``SRC DST [--layout L] [--allow-unknown]``."""
import argparse
import sys
from typing import Callable, Sequence

from .key_mapping import ConversionReport


def build_parser(description: str, src_help: str, layouts: Sequence[str],
                 layout_help: str) -> argparse.ArgumentParser:
    """A converter's argument parser.

    Args:
        description (str): What the tool converts.
        src_help (str): The source files it reads.
        layouts (Sequence[str]): Its layouts (``'auto'`` is added).
        layout_help (str): What each layout is.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=src_help)
    parser.add_argument('dst', help='output mmcyc checkpoint (.pth)')
    parser.add_argument(
        '--layout',
        choices=('auto', ) + tuple(layouts),
        default='auto',
        help=layout_help)
    parser.add_argument(
        '--allow-unknown',
        action='store_true',
        help='drop keys that fit no rule instead of failing')
    return parser


def run_conversion(convert: Callable[[str, str, str, bool], ConversionReport],
                   args: argparse.Namespace) -> int:
    """Call ``convert(src, dst, layout, allow_unknown)`` and print its
    report.

    Returns:
        int: 0 when saved; 1 (the error on stderr) for an unreadable source
        or keys that do not convert.
    """
    try:
        report = convert(args.src, args.dst, args.layout, args.allow_unknown)
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(report)
    print(f'saved {args.dst}')
    return 0
