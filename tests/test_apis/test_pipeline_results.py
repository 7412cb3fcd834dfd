# Copyright (c) mmcyc contributors. All rights reserved.
"""results.json / results.md of the main job (write_results)."""
import json
import re

from mmcyc.apis import write_results


def _rows():
    return dict(cam=27.389999, cam_cyc=27.23, cam_rw=26.62, cam_rw_cyc=None,
                cam_val=26.13, cam_sweep_bg=0.05, cam_sweep_best=29.21,
                cam_cyc_rw_n=27.0, corr_acc_cls=38.05, corr_acc_cyc=9.74,
                recall_cam_salient=37.41, recall_cam_weak=38.08,
                recall_cam_body=43.8)


def test_write_results_table_and_json(tmp_path):
    rows = _rows()
    table = write_results(rows, str(tmp_path))
    assert (tmp_path / 'results.md').read_text() == table
    assert json.loads((tmp_path / 'results.json').read_text()) == rows
    lines = table.splitlines()
    assert lines[2] == '| CAM | 27.39 | | |'
    # a row measured as None shows n/a, a row not run stays blank
    assert lines[6] == '| CAM + RW + Cyc | n/a |  |  |'
    assert '| CAM + Eq. 14 with F = the classifier' in lines[4]
    assert lines[4].endswith('|  | | |')
    assert '| CAM + Cyc (N = 16) |  |  |  |' in lines
    assert '| CAM | 37.41 | 38.08 | 43.80 |' in lines
    assert 'classifier features 38.05, CyCSNet 9.74;' in table
    # the object-restricted figures of an older run's metrics: blank
    assert "object of the class  and  (a random cell" in table
    rows.update(corr_acc_object_cls=51.0, corr_acc_object_cyc=20.5,
                corr_chance_object=18.25)
    table = write_results(rows, str(tmp_path))
    assert ("kept in the target's object of the class 51.00 and 20.50 (a "
            'random cell of the object: 18.25);') in table
    assert 'holds another class too  and  (a random object cell: ).' in table
    rows.update(corr_class_object_cls=90.0, corr_class_object_cyc=70.25,
                corr_chance_class_object=55.5)
    table = write_results(rows, str(tmp_path))
    assert ("on an object of the class where the target holds another "
            'class too 90.00 and 70.25 (a random object cell: 55.50).') \
        in table


def test_write_results_names_the_source_everywhere(tmp_path):
    rows = dict(_rows(), cam_base=25.0)
    table = write_results(rows, str(tmp_path), source='LPCAM')
    # every mention of the maps names the source: no bare "CAM" is left
    # but in the note on the stage-1 CAMs the source starts from
    bare = [line for line in table.splitlines()
            if re.search(r'(?<!LP)CAM', line)]
    assert len(bare) == 1 and 'stage-1 CAMs that LPCAM starts from score ' \
        '25.00' in bare[0]
    assert 'LPCAM on val 26.13' in table
    assert '(LPCAM + Cyc: N = 16;' in table
    assert '| LPCAM + Cyc (N = 64) |' in table
