"""SynthVOC: a tiny synthetic dataset in the exact PASCAL VOC 2012 layout.

It stands in for VOC where VOC is not available (tests, CPU runs of every
stage) and is built to pose the problem CyCSNet addresses (paper Sect. 1,
Fig. 1): the instances of a class differ in which of their parts the CAM
finds, so a target's CAM misses parts that other images of its class show
clearly, and Eq. 14 can borrow them. Variants:

``'multi-part'`` (the default) -- every class has a shared-style **body**
and **two class-specific parts** (each 10-16 % of the body's area, on
roughly opposite sides of the object). In each object one part, drawn at
random, is **salient** (the class's saturated colour and pattern at full
contrast); the other is **weak**: the same pattern with its colour mixed
half-way into the body colour. Which part is salient varies from object to
object, so a classifier must learn both parts, yet in any one image its CAM
is drawn to the salient one. Part 0 of class ``c`` has hue ``(c - 1) / 20``
(bright, one of four patterns); part 1 a hue half-way between those, turned
by 180 degrees (darker, another pattern), so the two parts of a class look
unrelated -- like a ship's hull and its sail.

``'single-part'`` (the control, format of earlier releases) -- one small,
always salient part per class (10-18 % of the body). Every instance's CAM
already finds it, so vectors borrowed from other images can only point at
what the target's CAM covers: CyCSNet is not expected to help here.

Both variants share the bodies: shape, colour and texture from a pool of
four styles, each shared by five classes (class ``c`` uses style
``(c - 1) % 4``), so the body alone does not tell the class.

Each image holds 1-3 objects of 1-2 classes on a textured background
(low-frequency noise, a grating and a gradient, different per image). Later
objects occlude earlier ones and the masks follow. Every image is drawn from
its own generator seeded with ``(seed, index)``, so the same arguments always
give byte-identical files.

Layout written under ``out_dir`` (image names ``synth_000000``, ...)::

    JPEGImages/<name>.jpg              every image
    SegmentationClass/<name>.png       train and val images
    SegmentationClassAug/<name>.png    every image
    SynthParts/<name>.png              every image: the part map (below)
    ImageSets/Segmentation/train.txt   the first images of train_aug
    ImageSets/Segmentation/train_aug.txt
    ImageSets/Segmentation/val.txt     disjoint from train_aug
    cls_labels.npy                     AffinityNet's dict name -> (20,) labels
    synthvoc_meta.json                 the arguments, written last

Masks are palette PNGs (VOC palette) with ids 0..20 and 255 on a band 2 px
wide along every object border, like VOC's. The part map is ground truth of
the synthetic data only, for diagnostics (never used for training): a
grey-level PNG with ``8 * class_id + role + 4 * salient`` on object pixels
(role 0 = body, ``1 + k`` = class-specific part k; salient = 1 on the
salient part) and 0 on the background, without border band;
:func:`decode_part_map` and :func:`salient_from_part_map` split it.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from mmcyc.utils.atomic_io import atomic_open

from .cls_labels import (VOC_CLASSES, labels_from_mask, save_cls_labels,
                         voc_palette)
# the renderer's names are this module's too (its public interface)
from .synthvoc_render import (BODY_STYLES, IGNORE_INDEX,  # noqa: F401
                              MAX_TRIES, NUM_CLASSES, NUM_PARTS, PART_CODE,
                              SALIENT_FLAG, VARIANTS, SynthSample,
                              _check_variant, _size_hw, synth_sample)

META_FILE = 'synthvoc_meta.json'
PART_DIR = 'SynthParts'
FORMAT_VERSION = 2
JPEG_QUALITY = 92


def decode_part_map(part_map: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Split a SynthVOC part map into classes and roles.

    Args:
        part_map (np.ndarray): ``(H, W)`` values ``PART_CODE * class_id +
            role + SALIENT_FLAG * salient`` (0 = background), as written to
            ``SynthParts/``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``class_id`` (H, W) int64, 0..20 (0 =
        background), and ``role`` (H, W) int64: -1 on the background, 0 on
        bodies, ``1 + k`` on part k.
    """
    part_map = np.asarray(part_map).astype(np.int64)
    class_id = part_map // PART_CODE
    role = np.where(class_id > 0, part_map % SALIENT_FLAG, -1)
    return class_id, role


def salient_from_part_map(part_map: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: the pixels of salient parts in a part map."""
    part_map = np.asarray(part_map).astype(np.int64)
    return (part_map >= PART_CODE) & (part_map % PART_CODE >= SALIENT_FLAG)


def load_part_map(data_root: str, name: str) -> np.ndarray:
    """Read ``<data_root>/SynthParts/<name>.png`` (:func:`decode_part_map`).

    Raises:
        FileNotFoundError: If the file is missing (data made by a generator
            older than format 2, or not SynthVOC), naming it.
    """
    path = osp.join(data_root, PART_DIR, name + '.png')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'part map {path} not found: part maps exist only for SynthVOC '
            f'made by format {FORMAT_VERSION} or later (regenerate the data)')
    return np.asarray(Image.open(path))


def _normalise_args(num_train, num_val, size, seed, num_train_aug_extra,
                    variant) -> dict:
    num_train, num_val, seed = int(num_train), int(num_val), int(seed)
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be >= 1, got '
                         f'{num_train} and {num_val}')
    if num_train_aug_extra is None:
        num_train_aug_extra = num_train - num_train // 3
    num_train_aug_extra = int(num_train_aug_extra)
    if not 0 <= num_train_aug_extra < num_train:
        raise ValueError('num_train_aug_extra must be in [0, num_train) = '
                         f'[0, {num_train}), got {num_train_aug_extra}')
    return dict(
        num_train=num_train,
        num_val=num_val,
        size=list(_size_hw(size)),
        seed=seed,
        num_train_aug_extra=num_train_aug_extra,
        variant=_check_variant(variant))


def _write_lines(path: str, names: List[str]) -> None:
    with open(path, 'w', newline='\n') as f:
        f.write(''.join(f'{n}\n' for n in names))


def _save_png(path: str, mask: np.ndarray, palette: bytes) -> None:
    png = Image.fromarray(mask)  # mode 'L'; putpalette turns it into 'P'
    png.putpalette(palette)
    png.save(path, format='PNG', optimize=False, compress_level=6)


def make_synthvoc(out_dir: str,
                  num_train: int = 240,
                  num_val: int = 60,
                  size: Union[int, Sequence[int]] = 96,
                  seed: int = 0,
                  num_train_aug_extra: Optional[int] = None,
                  variant: str = 'multi-part') -> dict:
    """Write SynthVOC in PASCAL VOC 2012 layout (see the module docstring).

    ``synthvoc_meta.json`` is removed first and written last, so that an
    interrupted run leaves a directory that :func:`is_complete` rejects.

    Args:
        out_dir (str): Output directory; created, existing files replaced.
        num_train (int): Images in ``train_aug.txt``. Defaults to 240.
        num_val (int): Images in ``val.txt``. Defaults to 60.
        size (int | tuple[int, int]): Image size, or (H, W). Defaults to 96.
        seed (int): Seed; image ``i`` draws from ``SeedSequence([seed, i])``.
            Defaults to 0.
        num_train_aug_extra (int, optional): Images of train_aug that are not
            in ``train.txt`` (like VOC's SBD-only images); ``train.txt``
            holds the first ``num_train - num_train_aug_extra``. Defaults to
            None, meaning ``num_train - num_train // 3``: train.txt is the
            first third of train_aug.
        variant (str): ``'multi-part'`` (default) or ``'single-part'``, the
            control (see the module docstring).

    Returns:
        dict: ``out_dir``; ``args`` (normalised); ``splits`` (split ->
        names); ``objects`` (name -> per-object statistics as in
        :class:`SynthSample`); ``class_counts`` (train_aug images per class,
        index 0 = class id 1).
    """
    args = _normalise_args(num_train, num_val, size, seed,
                           num_train_aug_extra, variant)
    meta_path = osp.join(out_dir, META_FILE)
    if osp.exists(meta_path):
        os.remove(meta_path)
    list_dir = osp.join(out_dir, 'ImageSets', 'Segmentation')
    img_dir = osp.join(out_dir, 'JPEGImages')
    seg_dir = osp.join(out_dir, 'SegmentationClass')
    aug_dir = osp.join(out_dir, 'SegmentationClassAug')
    part_dir = osp.join(out_dir, PART_DIR)
    for d in (list_dir, img_dir, seg_dir, aug_dir, part_dir):
        os.makedirs(d, exist_ok=True)

    n_aug = args['num_train']
    names = [f'synth_{i:06d}' for i in range(n_aug + args['num_val'])]
    splits = dict(
        train=names[:n_aug - args['num_train_aug_extra']],
        train_aug=names[:n_aug],
        val=names[n_aug:])
    in_seg_class = set(splits['train']) | set(splits['val'])
    palette = voc_palette().tobytes()
    labels, objects = {}, {}
    for i, name in enumerate(names):
        sample = synth_sample(i, args['size'], args['seed'], args['variant'])
        Image.fromarray(sample.image).save(
            osp.join(img_dir, name + '.jpg'),
            format='JPEG',
            quality=JPEG_QUALITY,
            subsampling=0,
            optimize=False)
        _save_png(osp.join(aug_dir, name + '.png'), sample.mask, palette)
        if name in in_seg_class:
            _save_png(osp.join(seg_dir, name + '.png'), sample.mask, palette)
        Image.fromarray(sample.part_map).save(
            osp.join(part_dir, name + '.png'), format='PNG')
        labels[name] = labels_from_mask(sample.mask, NUM_CLASSES,
                                        IGNORE_INDEX, name)
        objects[name] = sample.objects

    for split, split_names in splits.items():
        _write_lines(osp.join(list_dir, f'{split}.txt'), split_names)
    save_cls_labels(osp.join(out_dir, 'cls_labels.npy'), labels)
    class_counts = np.sum([labels[n] for n in splits['train_aug']], axis=0)

    meta = dict(
        generator='mmcyc.datasets.synthvoc',
        format_version=FORMAT_VERSION,
        args=args,
        counts={k: len(v) for k, v in splits.items()})
    with atomic_open(meta_path, 'w') as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write('\n')
    return dict(
        out_dir=out_dir,
        args=args,
        splits=splits,
        objects=objects,
        class_counts=class_counts.astype(int).tolist())


def is_complete(out_dir: str,
                num_train: int = 240,
                num_val: int = 60,
                size: Union[int, Sequence[int]] = 96,
                seed: int = 0,
                num_train_aug_extra: Optional[int] = None,
                variant: str = 'multi-part') -> bool:
    """Whether ``out_dir`` holds a finished SynthVOC made with these arguments.

    Args:
        out_dir (str): Dataset directory.
        num_train, num_val, size, seed, num_train_aug_extra, variant: As in
            :func:`make_synthvoc`.

    Returns:
        bool: True if the meta file (written last) records these arguments.
    """
    try:
        with open(osp.join(out_dir, META_FILE)) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    args = _normalise_args(num_train, num_val, size, seed,
                           num_train_aug_extra, variant)
    return (meta.get('format_version') == FORMAT_VERSION
            and meta.get('args') == args
            and osp.isfile(osp.join(out_dir, 'cls_labels.npy')))


def synthvoc_summary(result: dict) -> str:
    """Human-readable summary of what :func:`make_synthvoc` returned."""
    a = result['args']
    n_obj = [len(v) for v in result['objects'].values()]
    part = [
        o['part_pixels'] / (o['part_pixels'] + o['body_pixels'])
        for objs in result['objects'].values() for o in objs
    ]
    counts: Dict[str, int] = {k: len(v) for k, v in result['splits'].items()}
    per_class = ', '.join(f'{VOC_CLASSES[c]} {n}'
                          for c, n in enumerate(result['class_counts']))
    return '\n'.join([
        f"SynthVOC ({a['variant']}) in {result['out_dir']} "
        f"(size {a['size'][0]}x{a['size'][1]}, seed {a['seed']})",
        f"  splits: train {counts['train']}, "
        f"train_aug {counts['train_aug']}, val {counts['val']}",
        f'  objects per image: mean {np.mean(n_obj):.2f}; part fraction of '
        f'an object: mean {np.mean(part):.3f}, max {np.max(part):.3f}',
        f'  train_aug images per class: {per_class}',
    ])
