"""The main job, tools/run_pipeline.py, end to end on a tiny dataset."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

CONFIG = 'tests/data/pipeline_tiny.py'


@pytest.fixture(scope='module')
def pipeline_run(tmp_path_factory, run_tool, python):
    work = tmp_path_factory.mktemp('pipeline')
    args = [python, 'tools/run_pipeline.py', '--config', CONFIG, '--work-dir',
            str(work / 'work'), '--data-root', str(work / 'data')]
    proc = run_tool(*args)
    return work, args, proc


def test_results_and_outputs(pipeline_run):
    work, _, proc = pipeline_run
    with open(work / 'work' / 'results.json') as f:
        results = json.load(f)
    for key in ('cam', 'cam_val'):
        assert 0 <= results[key] <= 100
        assert results[key + '_sweep_best'] >= results[key] - 0.01
    assert (work / 'work' / 'results.md').read_text().startswith('| method |')
    assert '| CAM + Cyc |' in proc.stdout
    # the synthetic dataset was generated in VOC layout
    assert (work / 'data' / 'ImageSets' / 'Segmentation' / 'train.txt').is_file()
    # one CAM file per train_aug (train included) and val image
    assert len(list((work / 'work' / 'cams' / 'cam').glob('*.npz'))) == 24 + 8
    # stage 3: refined CAMs of the 8 train images with N = 4 (scored), and of
    # the 24 train_aug images with N = 8 (walked in stage 4), one bank
    assert len(list((work / 'work' / 'cams' / 'cyc').glob('*.npz'))) == 8
    assert len(list((work / 'work' / 'cams' / 'cyc_rw').glob('*.npz'))) == 24
    assert (work / 'work' / 'cams' / 'feature_bank.pth').is_file()
    assert 0 <= results['cam_cyc'] <= 100
    assert 0 <= results['cam_cyc_rw_n'] <= 100
    for metrics, num_refs in (('cyc_train', 4), ('cyc_rw_train', 8)):
        with open(work / 'work' / 'metrics' / f'{metrics}.json') as f:
            assert json.load(f)['num_refs'] == num_refs
    # the part-correspondence accuracy of F before and after stage 2, on
    # the same pairs, with its Fig. 3 drawings
    counts = []
    for features in ('cls', 'cyc'):
        for key in (f'corr_acc_{features}', f'corr_acc_object_{features}',
                    'corr_chance_object', f'corr_class_object_{features}',
                    'corr_chance_class_object'):
            acc = results[key]
            assert acc is None or 0 <= acc <= 100, key  # None: no reference
        with open(work / 'work' / 'metrics' / f'corr_{features}.json') as f:
            corr = json.load(f)
        assert corr['features'] == features and corr['pairs'] > 0
        counts.append((corr['pairs'], corr['count']))
        # drawn where the (tiny, barely trained) CAMs give a reference
        assert (work / 'work' / 'corr' / features / 'vis_data' / 'vis_image'
                / 'correspondence_0.png').is_file() == (corr['count'] > 0)
    assert counts[0] == counts[1]
    # CAM recall per region kind of the multi-part data, before and after
    # the ablation: Eq. 14 with F before stage 2 (the classifier's backbone)
    assert 0 <= results['cam_eq14_cls'] <= 100
    assert len(list((work / 'work' / 'cams' / 'eq14_cls').glob('*.npz'))) == 8
    for cams in ('cam', 'cyc', 'cyc_rw', 'eq14_cls'):
        for region in ('salient', 'weak', 'body'):
            assert 0 <= results[f'recall_{cams}_{region}'] <= 100
        for region in ('salient', 'weak'):  # refinement only adds
            assert results[f'recall_{cams}_{region}'] >= \
                results[f'recall_cam_{region}']
    # stage 4: AffinityNet trained, plain and refined CAMs walked and scored
    assert (work / 'work' / 'aff' / 'epoch_2.pth').is_file()
    # its labels came through the dense CRF, run once per train_aug image
    assert len(list((work / 'work' / 'cams' / 'cam_crf').glob('*.npz'))) == 24
    assert 0 <= results['cam_rw'] <= 100 and 0 <= results['cam_rw_cyc'] <= 100
    assert '| CAM + RW + Cyc |' in proc.stdout
    # the walked pseudo masks as VOC palette PNGs, one per train_aug image
    for name in ('rw', 'rw_cyc'):
        pngs = sorted((work / 'work' / 'pseudo_masks' / name).glob('*.png'))
        assert len(pngs) == 24
        with Image.open(pngs[0]) as png:
            assert png.mode == 'P'
            assert set(np.unique(np.asarray(png))) <= set(range(21))
    # stage 5: a stock mmseg FCN trained on each folder of pseudo masks (the
    # dumped config reads them, not the real masks), scored on val
    for name, row in (('rw_cyc', 'seg_val'), ('rw', 'seg_val_rw')):
        seg = work / 'work' / 'seg' / name
        assert (seg / 'iter_4.pth').is_file()
        dumped = Config.fromfile(seg / 'seg_tiny_synthvoc.py')
        assert dumped.train_dataloader.dataset.data_prefix.seg_map_path == \
            str(work / 'work' / 'pseudo_masks' / name)
        assert dumped.val_dataloader.dataset.data_prefix.seg_map_path == \
            'SegmentationClass'
        assert 0 <= results[row] <= 100
        assert f'{results[row]:.2f}' in proc.stdout
        # seg.tta: also scored with mmseg's multi-scale + flip test
        assert 0 <= results[row + '_tta'] <= 100
        assert f'{results[row]:.2f} | {results[row + "_tta"]:.2f} |' in \
            proc.stdout
    # the trainings did not validate: each model is scored by a later step
    for stage in ('cam', 'aff'):
        logs = list((work / 'work' / stage).glob('*/*.log'))
        assert logs and not any('Epoch(val)' in log.read_text()
                                for log in logs), stage
    # stage 2 ran with DCFS and its curves were drawn
    curves = work / 'work' / 'cyc' / 'curves'
    assert (curves / 'vis_data' / 'vis_image' /
            'cyc_training_curves_0.png').is_file()
    with open(curves / 'stats.json') as f:
        stats = json.load(f)
    assert 0 <= stats['beta2_first'] <= stats['beta2_last'] <= 1
    # beta2 travels with the checkpoint (DCFSHook), equal to the last logged
    ckpt = torch.load(work / 'work' / 'cyc' / 'epoch_2.pth',
                      map_location='cpu', weights_only=False)
    assert ckpt['dcfs']['mode'] == 'momentum'
    assert ckpt['dcfs']['beta2'] == pytest.approx(stats['beta2_last'],
                                                  abs=1e-4)


def test_stage2_starts_from_the_stage1_classifier(pipeline_run):
    """The Runner's init_weights() read the stage-1 checkpoint into the
    frozen C (building CyCSNet reads no file): C leaves stage 2 unchanged."""
    work, _, _ = pipeline_run

    def state_dict(path):
        return torch.load(path, map_location='cpu',
                          weights_only=False)['state_dict']

    cam = state_dict(work / 'work' / 'cam' / 'epoch_2.pth')
    cyc = state_dict(work / 'work' / 'cyc' / 'epoch_2.pth')
    assert {k[len('cam_classifier.'):] for k in cyc
            if k.startswith('cam_classifier.')} == set(cam)
    for key, value in cam.items():
        assert torch.equal(cyc['cam_classifier.' + key], value), key


def test_rerun_skips_finished_stages(pipeline_run, run_tool):
    work, args, _ = pipeline_run
    with open(work / 'work' / 'results.json') as f:
        first = json.load(f)
    # a writer killed mid-file in an earlier run left its temporary file
    leftover = work / 'work' / 'cams' / 'cam' / '.img.npz.k1ll3d.tmp'
    leftover.write_bytes(b'partial')
    proc = run_tool(*args)
    log = proc.stdout + proc.stderr
    assert not leftover.exists() and 'removed 1 temporary files' in log
    assert 'is complete, skipped' in log  # data: its own meta checked
    # every stage's manifest is 'done' with the key it would have now
    for stage in ('cam_train', 'cam_infer', 'rw', 'seg'):
        assert f'{stage}: done with the current inputs' in log
    assert ('stages aff_train, corr, cyc_train, refine: done with the '
            'current inputs, skipped') in log
    for tool in ('train.py', 'test.py', 'refine_cam.py', 'run_pipeline.py'):
        assert f'tools/{tool}' not in log  # no child ran
    with open(work / 'work' / 'results.json') as f:
        assert json.load(f) == first
    for stage in ('data', 'cam_train', 'cam_infer', 'cyc_train', 'corr',
                  'refine', 'aff_train', 'rw', 'seg'):
        with open(work / 'work' / 'manifests' / f'{stage}.json') as f:
            manifest = json.load(f)
        assert manifest['state'] == 'done'
        assert manifest['parts']['stage'] == stage


def test_changed_stage_setting_remakes_it_and_what_follows(
        pipeline_run, run_tool, tmp_path):
    """Other stage-5 settings: seg is made afresh (its old models and
    scores gone, those of multi-scale + flip too), the stages before it are
    reused. Run on a copy of the module's work folder (a stage's key does
    not depend on the folder)."""
    work, args, _ = pipeline_run
    copy = tmp_path / 'work'
    shutil.copytree(work / 'work', copy)
    config = tmp_path / 'pipeline_rw_only.py'
    config.write_text(f"_base_ = ['{osp.abspath(CONFIG)}']\n"
                      "seg = dict(pseudo_masks=['rw'], tta=False)\n")
    changed = [
        str(config) if a == CONFIG else str(copy)
        if a == str(work / 'work') else a for a in args
    ]
    assert changed != args and str(work / 'data') in changed
    proc = run_tool(*changed)
    log = proc.stdout + proc.stderr
    assert 'seg: made by other inputs' in log
    for stage in ('cam_train', 'cam_infer', 'rw'):
        assert f'{stage}: done with the current inputs' in log, stage
    with open(copy / 'results.json') as f:
        results = json.load(f)
    assert 'seg_val_rw' in results and 'seg_val' not in results
    assert not any(key.endswith('_tta') for key in results)
    assert not list((copy / 'metrics').glob('seg_*_tta.json'))
    assert not (copy / 'seg' / 'rw_cyc').exists()
    assert (copy / 'seg' / 'rw' / 'iter_4.pth').is_file()


def _copy_of_run(pipeline_run, tmp_path):
    """The module's finished run copied (a stage's key does not depend on
    its folder), and its command pointed at the copy."""
    work, args, _ = pipeline_run
    copy = tmp_path / 'work'
    shutil.copytree(work / 'work', copy)
    return copy, [str(copy) if a == str(work / 'work') else a for a in args]


# results.json's rows made after stage 5 ``corr``: refine, rw and seg
ROWS_AFTER_CORR = ('cam_cyc', 'cam_eq14_cls', 'cam_rw', 'seg_val',
                   'recall_cyc', 'recall_eq14_cls')


def test_to_stops_after_the_named_stage(pipeline_run, run_tool, tmp_path):
    """``--to corr`` on a finished run: the lanes are cut after corr (the
    AffinityNet lane, all after it, is not started), no later stage is
    looked at, and results.json keeps only the rows of the stages up to
    corr, with the values of the full run."""
    work, _, _ = pipeline_run
    copy, args = _copy_of_run(pipeline_run, tmp_path)
    proc = run_tool(*args, '--to', 'corr')
    log = proc.stdout + proc.stderr
    assert ('stages corr, cyc_train: done with the current inputs, '
            'skipped') in log
    for stage in ('cam_train', 'cam_infer'):
        assert f'{stage}: done with the current inputs' in log
    for stage in ('refine', 'aff_train', 'rw', 'seg'):
        assert f'{stage}: done with' not in log and \
            f'stage {stage}' not in log
    assert 'stopped after corr' in log
    with open(work / 'work' / 'results.json') as f:
        full = json.load(f)
    with open(copy / 'results.json') as f:
        cut = json.load(f)
    assert any(key.startswith(ROWS_AFTER_CORR) for key in full)
    assert cut == {
        key: value
        for key, value in full.items() if not key.startswith(ROWS_AFTER_CORR)
    }
    assert 'cam' in cut and 'corr_acc_cyc' in cut
    assert '| CAM + Cyc |  |' in (copy / 'results.md').read_text()


def test_from_a_later_lane_stage_reruns_it(pipeline_run, run_tool, tmp_path):
    """``--from aff_train --to aff_train``: the lanes start although every
    lane stage is done (aff_train is forced); the CyCSNet lane's stages,
    before aff_train, are kept, and nothing after aff_train runs."""
    copy, args = _copy_of_run(pipeline_run, tmp_path)
    checkpoint = copy / 'aff' / 'epoch_2.pth'
    before = checkpoint.stat().st_mtime_ns
    proc = run_tool(*args, '--from', 'aff_train', '--to', 'aff_train')
    log = proc.stdout + proc.stderr
    assert 'in lanes: cyc_train -> corr -> refine | aff_train' in log
    assert 'stage aff_train (forced)' in log
    for stage in ('cyc_train', 'corr', 'refine'):
        assert f'{stage}: done with the current inputs' in log
    assert 'stage rw' not in log and 'stopped after aff_train' in log
    assert checkpoint.stat().st_mtime_ns != before  # trained anew


def test_to_before_from_is_refused(tmp_path):
    from mmcyc.apis.run_pipeline import run_pipeline
    with pytest.raises(ValueError, match="to_stage 'cam_infer' comes before"):
        run_pipeline(CONFIG, str(tmp_path / 'work'), from_stage='refine',
                     to_stage='cam_infer')
    assert not (tmp_path / 'work').exists()


def test_distributed_walk_matches_the_main_job(pipeline_run, run_tool, python,
                                               free_port):
    """Stage 4's random walk on 2 CPU ranks (gloo, tools/dist_test.sh): each
    rank writes the PNGs of its shard; together they are the main job's
    single-process masks of train, with the same gathered mIoU."""
    work, _, _ = pipeline_run
    data, out = work / 'data', work / 'dist_rw'
    metrics = out / 'metrics.json'
    run_tool(
        'bash', 'tools/dist_test.sh', 'tests/data/aff_tiny_synthvoc.py',
        str(work / 'work' / 'aff' / 'epoch_2.pth'), '2', '--work-dir',
        str(out / 'work'), '--split', 'ImageSets/Segmentation/train.txt',
        '--pseudo-mask-dir', str(out / 'masks'), '--metrics-json',
        str(metrics), '--cfg-options',
        f'test_dataloader.dataset.data_root={data}',
        f"test_dataloader.dataset.pipeline.1.cam_dir="
        f"{work / 'work' / 'cams' / 'cyc_rw'}",
        env=dict(os.environ, PYTHON=python, PORT=free_port))
    pngs = sorted((out / 'masks').glob('*.png'))
    assert len(pngs) == 8  # the train images
    for png in pngs:
        single = work / 'work' / 'pseudo_masks' / 'rw_cyc' / png.name
        with Image.open(png) as a, Image.open(single) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b)), png.name
    with open(metrics) as f:
        dist_miou = json.load(f)['mIoU']
    with open(work / 'work' / 'metrics' / 'rw_cyc_train.json') as f:
        assert dist_miou == pytest.approx(json.load(f)['mIoU'], abs=0.01)


def test_walk_resumes_from_masks_already_written(pipeline_run, run_tool,
                                                 python):
    """tools/test.py --pseudo-mask-dir reads back the PNGs in the folder
    (the test pipeline's LoadPseudoMask) and walks only the missing images,
    when the folder's manifest says they were made by the same inputs."""
    work, _, _ = pipeline_run
    out = work / 'resumed'
    train = (work / 'data' / 'ImageSets' / 'Segmentation' /
             'train.txt').read_text().split()
    names = [osp.splitext(osp.basename(n))[0] for n in train]
    kept, missing = names[0], names[1]
    args = [
        python, 'tools/test.py', 'tests/data/aff_tiny_synthvoc.py',
        str(work / 'work' / 'aff' / 'epoch_2.pth'), '--work-dir',
        str(work / 'resumed_work'), '--split',
        'ImageSets/Segmentation/train.txt', '--pseudo-mask-dir', str(out),
        '--input-cam-dir', str(work / 'work' / 'cams' / 'cyc'),
        '--cfg-options', f"test_dataloader.dataset.data_root={work / 'data'}"
    ]
    run_tool(*args)
    walked = {n: np.asarray(Image.open(out / f'{n}.png')) for n in names}
    # an interrupted walk: one mask lost; another marked to see it read back
    os.remove(out / f'{missing}.png')
    Image.fromarray(np.full(walked[kept].shape, 7, np.uint8)).save(
        out / f'{kept}.png')
    run_tool(*args)
    with Image.open(out / f'{kept}.png') as png:
        assert (np.asarray(png) == 7).all()  # read back, not walked
    for name in names[1:]:  # walked again (or read back) as before
        with Image.open(out / f'{name}.png') as png:
            assert np.array_equal(np.asarray(png), walked[name])
    assert len(list(out.glob('*.png'))) == len(names)


def test_sweep_over_a_run_repeats_its_refinement_rows(pipeline_run, run_tool,
                                                     python, tmp_path):
    """sweep_num_refs.py --run WORK takes the run's config, weights, CAMs,
    data and seed from its manifests: at N = refine.num_refs it gives the
    run's "CAM + Cyc" row, with --classifier-features its "Eq. 14, F =
    classifier" row (each a refinement of its own, not a copy)."""
    work, _, _ = pipeline_run
    run = str(work / 'work')
    for flags, row in (([], 'cyc_train'),
                       (['--classifier-features'], 'eq14_cls_train')):
        out = tmp_path / row
        run_tool(python, 'tools/analysis_tools/sweep_num_refs.py', '--run',
                 run, '--out-dir', str(out), '--num-refs', '0', '4',
                 '--workers', '0', *flags)
        with open(work / 'work' / 'metrics' / f'{row}.json') as f:
            expected = json.load(f)
        with open(out / 'table4.json') as f:
            rows = json.load(f)
        assert rows[1]['num_refs'] == expected['num_refs'] == 4
        assert rows[1]['mIoU'] == pytest.approx(expected['mIoU'], abs=1e-6)
        assert rows[0]['mIoU'] == pytest.approx(
            expected['mIoU_unrefined'], abs=1e-6)
        assert len(list((out / 'n4').glob('*.npz'))) == 8


TYPOS = [
    ("aff = dict(_delete_=True, conifg='tests/data/aff_tiny_synthvoc.py')",
     "aff has missing keys ['config'] and unknown keys ['conifg']"),
    ("cam_ = dict(config='tests/data/cam_tiny_synthvoc.py')",
     "unknown entries ['cam_']"),
    ("seg = dict(pseudo_masks=['rw_cyc', 'rw_cy'])",
     "seg.pseudo_masks names ['rw_cy']"),
    ("cyc = dict(config='tests/data/no_such_config.py')",
     'cyc.config tests/data/no_such_config.py is not a file'),
]


def _typo_config(tmp_path, typo):
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    config = tmp_path / 'pipeline_typo.py'
    config.write_text(f"_base_ = ['{osp.join(repo, CONFIG)}']\n{typo}\n")
    return config


@pytest.mark.parametrize('typo, message', TYPOS)
def test_config_typo_stops_before_any_stage(tmp_path, typo, message):
    """A misspelled or missing entry is refused before the data stage, the
    error naming the config file."""
    from mmcyc.apis.run_pipeline import run_pipeline
    config = _typo_config(tmp_path, typo)
    work, data = tmp_path / 'work', tmp_path / 'data'
    with pytest.raises(ValueError) as info:
        run_pipeline(str(config), str(work), data_root=str(data))
    assert str(info.value).startswith(f'{config}: ')
    assert message in str(info.value)
    assert not data.exists() and not work.exists()  # no stage ran


def test_config_typo_stops_the_tool(tmp_path, python):
    """tools/run_pipeline.py exits non-zero with the library's message (the
    four typos above are checked on the library step, in this process)."""
    import subprocess
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    typo, message = TYPOS[0]
    config = _typo_config(tmp_path, typo)
    work, data = tmp_path / 'work', tmp_path / 'data'
    proc = subprocess.run(
        [python, 'tools/run_pipeline.py', '--config', str(config),
         '--work-dir', str(work), '--data-root', str(data)],
        capture_output=True, text=True, cwd=repo)
    assert proc.returncode != 0
    assert f'{config}: ' in proc.stderr and message in proc.stderr
    assert not data.exists()  # no stage ran


def test_lanes_ran_concurrently(pipeline_run):
    """Stages 4-6 and stage 7 ran as two child pipelines at the same time:
    AffinityNet's training started before the CyCSNet lane finished."""
    work, _, _ = pipeline_run
    log = (work / 'work' / 'pipeline.log').read_text().splitlines()

    def first(text):
        return next(i for i, line in enumerate(log) if text in line)

    lanes = first('in lanes: cyc_train -> corr -> refine | aff_train')
    aff_start = first('stage aff_train')
    refine_done = first('stage refine done')
    assert lanes < aff_start < refine_done < first('lanes done in')
    assert first('stage rw') > first('stage aff_train done')


def test_only_runs_the_named_stages(tmp_path, run_tool, python):
    """``--only data`` generates the data and nothing else, and writes no
    results (the main job's lanes run this way)."""
    work, data = tmp_path / 'work', tmp_path / 'data'
    run_tool(python, 'tools/run_pipeline.py', '--config', CONFIG,
             '--work-dir', str(work), '--data-root', str(data), '--only',
             'data')
    assert (data / 'ImageSets' / 'Segmentation' / 'train.txt').is_file()
    assert sorted(p.name for p in work.iterdir()) == [
        'manifests', 'pipeline.lock', 'pipeline.log']
    assert sorted(p.name for p in (work / 'manifests').iterdir()) == \
        ['data.json']


def test_stage_keys_follow_their_inputs(tmp_path):
    """A stage's key changes with the data root, with its own stage config
    (as resolved) and with any stage upstream of it, and with nothing else;
    a stage whose inputs are not done has no key."""

    from mmengine.logging import MMLogger

    from mmcyc.utils.manifest import write_manifest
    from mmcyc.apis.pipeline_stages import Pipeline
    from mmcyc.apis.stage_runner import STAGES
    logger = MMLogger.get_instance('test_stage_keys')

    def keys(config, data_root):
        pipeline = Pipeline(Config.fromfile(config), str(tmp_path / 'w'),
                            data_root, logger)
        # seg's inputs, and theirs down to the data, are not done yet
        with pytest.raises(RuntimeError, match='stage cam_train reads the '
                           'outputs of data, which is not done'):
            pipeline.stage_key('seg')
        result = {}
        for stage in STAGES:  # each done in turn, as a run would
            result[stage] = pipeline.stage_key(stage)
            write_manifest(pipeline.manifest_path(stage), result[stage],
                           'done', {})
        shutil.rmtree(tmp_path / 'w')
        return result

    base = keys(CONFIG, '/data/a')
    assert keys(CONFIG, '/data/a') == base
    assert len(set(base.values())) == len(base)
    other_root = keys(CONFIG, '/data/b')
    assert all(other_root[s] != base[s] for s in STAGES)
    # an edited AffinityNet config: aff_train and what reads it
    aff = tmp_path / 'aff_edited.py'
    aff.write_text(f"_base_ = ['{osp.abspath('tests/data/aff_tiny_synthvoc.py')}']"
                   "\noptim_wrapper = dict(optimizer=dict(lr=0.5))\n")
    config = tmp_path / 'pipeline_aff_edited.py'
    config.write_text(f"_base_ = ['{osp.abspath(CONFIG)}']\n"
                      f"aff = dict(config='{aff}')\n")
    edited = keys(str(config), '/data/a')
    changed = {s for s in STAGES if edited[s] != base[s]}
    assert changed == {'aff_train', 'rw', 'seg'}


def test_lpcam_source_replaces_the_cams(tmp_path, run_tool, python):
    """With an lpcam entry, cam_infer keeps the stage-1 CAMs in
    cams/cam_base, fits the prototypes on them and puts LPCAM maps (other
    values, the same format and images) in cams/cam, which every later stage
    reads; the entry changes cam_infer's key and not cam_train's."""
    from mmcyc.utils import load_cam
    from mmcyc.utils.manifest import read_manifest
    work, data = tmp_path / 'work', tmp_path / 'data'
    run_tool(python, 'tools/run_pipeline.py', '--config',
             'tests/data/pipeline_tiny_lpcam.py', '--work-dir', str(work),
             '--data-root', str(data), '--only', 'data', 'cam_train',
             'cam_infer')
    checkpoint = torch.load(work / 'lpcam' / 'lpcam.pth', map_location='cpu',
                            weights_only=False)
    assert any('prototype' in k for k in checkpoint['state_dict'])
    train = (data / 'ImageSets' / 'Segmentation' / 'train.txt').read_text()
    names = [osp.splitext(osp.basename(n))[0] for n in train.split()]
    differ = 0
    for name in names:
        lp, lp_labels = load_cam(str(work / 'cams' / 'cam' / f'{name}.npz'))
        cam, labels = load_cam(str(work / 'cams' / 'cam_base' /
                                   f'{name}.npz'))
        assert np.array_equal(lp_labels, labels) and lp.shape == cam.shape
        assert lp.min() >= 0 and lp.max() <= 1
        differ += int(not np.allclose(lp, cam))
    assert differ > 0
    for split in ('train', 'val', 'train_aug_part0', 'train_aug_part1'):
        assert (work / 'metrics' / f'cam_{split}.json').is_file()
    assert (work / 'metrics' / 'cam_base_train.json').is_file()
    # the same config without the lpcam entry: cam_train's key is the
    # one its manifest holds, cam_infer's differs

    from mmengine.logging import MMLogger
    from mmcyc.apis.pipeline_stages import Pipeline
    cfg = Config.fromfile('tests/data/pipeline_tiny_lpcam.py')
    cfg = Config({k: v for k, v in cfg.to_dict().items() if k != 'lpcam'},
                 filename=cfg.filename)
    plain = Pipeline(cfg, str(work), str(data),
                     MMLogger.get_instance('test_lpcam_keys'))
    manifest = read_manifest(str(work / 'manifests' / 'cam_train.json'))
    assert plain.stage_key('cam_train') == manifest['key']
    manifest = read_manifest(str(work / 'manifests' / 'cam_infer.json'))
    assert plain.stage_key('cam_infer') != manifest['key']
    assert 'lpcam' in manifest['parts']['entries']


def test_cam_inference_parts_balance_the_two_jobs(tmp_path):
    """The train_aug images outside train are split in two list files so
    that train + part 0 and val + part 1 are about as many images."""
    from mmengine.logging import MMLogger

    from mmcyc.apis.pipeline_stages import Pipeline
    from mmcyc.datasets import read_image_names
    sets = tmp_path / 'data' / 'ImageSets' / 'Segmentation'
    sets.mkdir(parents=True)
    train = [f't{i}' for i in range(4)]
    rest = [f'r{i}' for i in range(12)]
    train_aug = rest[:5] + train + rest[5:]  # train in the middle
    for split, names in (('train', train), ('val', ['v0', 'v1']),
                         ('train_aug', train_aug)):
        (sets / f'{split}.txt').write_text('\n'.join(names) + '\n')
    pipeline = Pipeline(Config.fromfile(CONFIG), str(tmp_path / 'w'),
                        str(tmp_path / 'data'),
                        MMLogger.get_instance('test_cam_parts'))
    def parts():
        return {part: read_image_names(path)
                for part, path in pipeline.train_aug_parts().items()}

    # 4 + 5 = 2 + 7 images a job, train_aug's order kept
    assert parts() == {0: rest[:5], 1: rest[5:]}
    assert sorted(os.listdir(tmp_path / 'w' / 'cam_test')) == [
        'train_aug_part0.txt', 'train_aug_part1.txt']
    # val as large as train and the rest together: all of it in part 0
    (sets / 'val.txt').write_text('\n'.join(f'v{i}' for i in range(20)))
    assert parts() == {0: rest}
    # train as large as val and the rest together: all of it in part 1
    big_train = [f't{i}' for i in range(20)]
    (sets / 'val.txt').write_text('v0\nv1\n')
    (sets / 'train.txt').write_text('\n'.join(big_train))
    (sets / 'train_aug.txt').write_text('\n'.join(big_train + rest))
    assert parts() == {1: rest}
    # train_aug is train: nothing left to split
    (sets / 'train_aug.txt').write_text('\n'.join(train))
    assert parts() == {}
