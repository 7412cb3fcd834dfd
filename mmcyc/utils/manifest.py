# Copyright (c) mmcyc contributors. All rights reserved.
"""Manifests: what produced an output, so that a stale one is not reused.

A manifest is a small JSON file beside (or about) an output: the *key* of
everything that determines the output (settings, config digests, the keys
of its inputs, the code version), a *state* (``'started'`` while it is
being made, ``'done'`` once complete) and, for people, the parts the key was
made of. An output is reused only when its manifest is ``'done'`` with the
key that would produce it now; a ``'started'`` one with the same key may be
resumed; anything else (another key, no manifest) is made afresh.
"""
import hashlib
import json
import os.path as osp
import time
from typing import Any, Optional

from mmcyc.utils.atomic_io import atomic_open
from mmcyc.version import __version__

STATES = ('started', 'done')


def digest(obj: Any) -> str:
    """A short, stable SHA-256 digest of a JSON-able object.

    Args:
        obj: Nested dicts, lists, strings and numbers (other objects are
            written with ``str``); dict order does not matter.

    Returns:
        str: The first 16 hex digits.
    """
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def config_digest(path: str) -> str:
    """Digest of a config as resolved (``_base_`` files and variables in).

    Args:
        path (str): An mmengine config file.

    Returns:
        str: :func:`digest` of its ``pretty_text``, so that an edit of any
        file it inherits from changes it, and a comment does not.
    """
    from mmengine.config import Config
    return digest(Config.fromfile(path).pretty_text)


def make_key(parts: dict) -> str:
    """The key of an output: the digest of its parts and the code version."""
    return digest(dict(parts, mmcyc_version=__version__))


def read_manifest(path: str) -> Optional[dict]:
    """The manifest at ``path``, or None if there is none (or unreadable)."""
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get('state') not in STATES:
        return None
    return manifest


def write_manifest(path: str, key: str, state: str, parts: dict) -> None:
    """Write a manifest atomically.

    Args:
        path (str): The manifest file (its folder is created).
        key (str): :func:`make_key` of ``parts``.
        state (str): ``'started'`` or ``'done'``.
        parts (dict): What the key was made of (kept for people).
    """
    if state not in STATES:
        raise ValueError(f'state must be one of {STATES}, got {state!r}')
    manifest = dict(
        key=key,
        state=state,
        mmcyc_version=__version__,
        time=time.strftime('%Y-%m-%d %H:%M:%S'),
        parts=parts)
    with atomic_open(path, 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True, default=str)


def manifest_matches(path: str, key: str, state: str = 'done') -> bool:
    """Whether the manifest at ``path`` has ``key`` and ``state``."""
    manifest = read_manifest(path)
    return (manifest is not None and manifest.get('key') == key
            and manifest.get('state') == state)


def describe_mismatch(path: str, key: str) -> str:
    """Why the manifest at ``path`` does not vouch for ``key``, in words."""
    manifest = read_manifest(path)
    if manifest is None:
        return f'no manifest at {path}'
    if manifest.get('key') != key:
        return (f'made by other inputs (manifest key {manifest.get("key")}, '
                f'now {key}; {osp.basename(path)} lists what it was made of)')
    return f'left {manifest.get("state")!r} (interrupted)'
