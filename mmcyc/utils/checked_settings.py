# Copyright (c) mmcyc contributors. All rights reserved.
"""Settings dicts (``test_cfg`` and the like) merged with their defaults."""
from typing import Mapping, Optional


def checked_settings(defaults: Mapping,
                     given: Optional[Mapping],
                     name: str = 'test_cfg') -> dict:
    """The defaults updated by the given settings, refusing unknown keys.

    A misspelled key (``bg_scor``) would otherwise be carried along unused
    while the default silently applies.

    Args:
        defaults (Mapping): Every accepted key with its default value.
        given (Mapping, optional): The config's settings (None: defaults).
        name (str): What the settings are called in configs, for the error.

    Returns:
        dict: A new dict with every key of ``defaults``.

    Raises:
        ValueError: Naming the unknown keys and the accepted ones.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f'{name} has unknown keys {unknown}; expected some '
                         f'of {sorted(defaults)}')
    return {**defaults, **given}
