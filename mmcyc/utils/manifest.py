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
import os
import os.path as osp
import shutil
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


def config_digest(path) -> str:
    """Digest of a config as resolved (``_base_`` files and variables in).

    Args:
        path (str | Config): An mmengine config file, or the config read
            from it.

    Returns:
        str: :func:`digest` of its ``pretty_text``, so that an edit of any
        file it inherits from changes it, and a comment does not.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(path) if isinstance(path, str) else path
    return digest(cfg.pretty_text)


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


def describe_mismatch(path: str, key: str, parts: dict) -> str:
    """Why the manifest at ``path`` does not vouch for ``key``, in words.

    Args:
        path (str): The manifest file.
        key (str): The key the output would have now.
        parts (dict): What that key is made of; the parts that differ from
            the manifest's are named.
    """
    manifest = read_manifest(path)
    if manifest is None:
        return f'no manifest at {path}'
    if manifest.get('key') != key:
        # compared as stored (JSON: tuples read back as lists)
        now = json.loads(json.dumps(parts, sort_keys=True, default=str))
        before = manifest.get('parts', {})
        changed = sorted(k for k in set(now) | set(before)
                         if before.get(k) != now.get(k))
        return (f'made by other inputs ({", ".join(changed) or "code"} '
                f'differ: see {path})')
    return f'left {manifest.get("state")!r} (interrupted)'


FOLDER_MANIFEST = 'mmcyc_manifest.json'


def bytes_digest(data: bytes) -> str:
    """:func:`file_digest` of bytes already read (the same value)."""
    return hashlib.sha256(data).hexdigest()[:16]


def file_digest(path: str, chunk: int = 1 << 22) -> str:
    """SHA-256 (first 16 hex digits) of a file's bytes, read in chunks."""
    sha = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            sha.update(block)
    return sha.hexdigest()[:16]


def folder_key(folder: str) -> Optional[str]:
    """The key of the manifest of a folder of per-image outputs, if any."""
    manifest = read_manifest(osp.join(folder, FOLDER_MANIFEST))
    return None if manifest is None else manifest.get('key')


def guard_output_dir(folder: str,
                     parts: dict,
                     what: str,
                     option: str = '--overwrite',
                     overwrite: bool = False) -> str:
    """Make sure a folder of per-image outputs holds only what ``parts`` make.

    Tools that write one file per image into a folder (CAMs, refined CAMs,
    pseudo masks) read files already there back instead of recomputing
    them (resumable). That is only right when they were made by the same
    inputs; so the folder carries a manifest
    (``<folder>/mmcyc_manifest.json``). A folder without files gets one; a
    folder whose manifest has the same key is resumed; anything else (other
    inputs, or files without a manifest) stops with an error that says what
    differs and how to remake it, unless ``overwrite`` (the folder is then
    emptied first).

    Args:
        folder (str): The output folder (created if needed).
        parts (dict): What the outputs are made from (:func:`make_key`).
        what (str): What the files are, for the message (e.g. ``'CAMs'``).
        option (str): The command-line option that sets ``overwrite``,
            named in the message.
        overwrite (bool): Empty a folder of other outputs instead of
            stopping.

    Returns:
        str: The key, for :func:`finish_output_dir`.

    Raises:
        RuntimeError: If the folder holds outputs of other inputs (or of
            unknown inputs) and ``overwrite`` is False.
    """
    key = make_key(parts)
    path = osp.join(folder, FOLDER_MANIFEST)
    entries = os.listdir(folder) if osp.isdir(folder) else []
    # atomic writers' temporary files are not outputs: another process
    # writing into the folder at this moment (e.g. its manifest, before it
    # exists) must not make it look like files without a manifest
    files = [
        e for e in entries if e != FOLDER_MANIFEST
        and not (e.startswith('.') and e.endswith('.tmp'))
    ]
    if files and not manifest_matches(path, key, 'started') and \
            not manifest_matches(path, key, 'done'):
        if read_manifest(path) is None:
            why = 'with no manifest saying what made them'
        else:
            why = describe_mismatch(path, key, parts)
        if not overwrite:
            raise RuntimeError(
                f'{folder} already holds {len(files)} files of {what} '
                f'{why}; they would be read back as if made now. Delete the '
                f'folder, choose another, or pass {option} to remake them')
        shutil.rmtree(folder)
    if not manifest_matches(path, key, 'done'):
        write_manifest(path, key, 'started', parts)
    return key


def finish_output_dir(folder: str, key: str, parts: dict) -> None:
    """Mark a folder guarded by :func:`guard_output_dir` complete."""
    write_manifest(osp.join(folder, FOLDER_MANIFEST), key, 'done', parts)
