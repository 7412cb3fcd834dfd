"""Manifests: outputs are reused only when made by the same inputs."""
import json
import os

import pytest

from mmcyc.utils.manifest import (FOLDER_MANIFEST, digest, file_digest,
                                  finish_output_dir, folder_key,
                                  guard_output_dir, make_key,
                                  manifest_matches, read_manifest,
                                  write_manifest)


def test_digest_is_stable_and_order_free(tmp_path):
    assert digest(dict(a=1, b=[1, 2])) == digest(dict(b=[1, 2], a=1))
    assert digest(dict(a=1)) != digest(dict(a=2))
    assert len(digest('x')) == 16
    path = tmp_path / 'f.bin'
    path.write_bytes(b'abc' * 1000)
    assert file_digest(str(path)) == file_digest(str(path), chunk=7)
    import hashlib
    assert file_digest(str(path)) == \
        hashlib.sha256(b'abc' * 1000).hexdigest()[:16]


def test_manifest_round_trip(tmp_path):
    path = str(tmp_path / 'm' / 'stage.json')
    assert read_manifest(path) is None
    key = make_key(dict(x=1))
    write_manifest(path, key, 'started', dict(x=1))
    assert manifest_matches(path, key, 'started')
    assert not manifest_matches(path, key)
    write_manifest(path, key, 'done', dict(x=1))
    assert manifest_matches(path, key) and not manifest_matches(path, 'k2')
    with pytest.raises(ValueError, match='state'):
        write_manifest(path, key, 'half', {})
    (tmp_path / 'bad.json').write_text('{"state": "other"}')
    assert read_manifest(str(tmp_path / 'bad.json')) is None


def test_guard_output_dir(tmp_path):
    folder = str(tmp_path / 'cams')
    parts = dict(checkpoint='aaa', data_root='/d')
    key = guard_output_dir(folder, parts, 'CAMs')  # new folder: claimed
    assert folder_key(folder) == key
    (tmp_path / 'cams' / 'img1.npz').write_bytes(b'1')
    # same inputs: resumed (files kept), also once done
    assert guard_output_dir(folder, parts, 'CAMs') == key
    finish_output_dir(folder, key, parts)
    assert guard_output_dir(folder, parts, 'CAMs') == key
    with open(os.path.join(folder, FOLDER_MANIFEST)) as f:
        assert json.load(f)['state'] == 'done'
    # another checkpoint: refused, naming what differs and the way out
    other = dict(parts, checkpoint='bbb')
    with pytest.raises(RuntimeError) as err:
        guard_output_dir(folder, other, 'CAMs', option='--overwrite')
    message = str(err.value)
    assert f'{folder} already holds 1 files of CAMs' in message
    assert 'checkpoint differ' in message and '--overwrite' in message
    assert (tmp_path / 'cams' / 'img1.npz').exists()
    # --overwrite: emptied and claimed for the new inputs
    new_key = guard_output_dir(folder, other, 'CAMs', overwrite=True)
    assert new_key != key and folder_key(folder) == new_key
    assert os.listdir(folder) == [FOLDER_MANIFEST]


def test_files_without_manifest_are_not_trusted(tmp_path):
    folder = tmp_path / 'masks'
    folder.mkdir()
    (folder / 'a.png').write_bytes(b'')
    with pytest.raises(RuntimeError, match='no manifest saying what made'):
        guard_output_dir(str(folder), dict(x=1), 'pseudo masks')
    # an empty folder (or one with a manifest of other inputs but no
    # files) is simply claimed
    os.remove(folder / 'a.png')
    guard_output_dir(str(folder), dict(x=1), 'pseudo masks')
    assert guard_output_dir(str(folder), dict(x=2), 'pseudo masks') == \
        folder_key(str(folder))


def test_bytes_digest_is_the_file_digest(tmp_path):
    import hashlib

    from mmcyc.utils.manifest import bytes_digest, file_digest
    data = bytes(range(256)) * 40000  # more than one 4 MiB read chunk
    path = tmp_path / 'blob.bin'
    path.write_bytes(data)
    assert bytes_digest(data) == file_digest(str(path)) == \
        hashlib.sha256(data).hexdigest()[:16]
    assert bytes_digest(data[:-1]) != bytes_digest(data)


def test_a_concurrent_writers_temporary_file_is_not_an_output(tmp_path):
    """Two tools claiming one folder at once (the main job's train and val
    CAM inference): while the first writes the manifest, the folder holds
    only its temporary file; the second must not take that for outputs
    without a manifest (measured: it stopped a VGG16 main job)."""
    folder = tmp_path / 'cams'
    folder.mkdir()
    (folder / f'.{FOLDER_MANIFEST}.abc123.tmp').write_bytes(b'{')
    (folder / '.img1.npz.def456.tmp').write_bytes(b'')
    parts = dict(checkpoint='aaa')
    key = guard_output_dir(str(folder), parts, 'CAMs')
    assert folder_key(str(folder)) == key
    # a real file without a manifest is still refused
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'img1.npz').write_bytes(b'1')
    with pytest.raises(RuntimeError, match='with no manifest'):
        guard_output_dir(str(other), parts, 'CAMs')
