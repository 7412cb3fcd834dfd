"""SynthVOC: a tiny synthetic dataset in the exact PASCAL VOC 2012 layout.

It stands in for VOC where VOC is not available (tests, CPU smoke runs of every stage)
and is built so that the weakness CyCSNet addresses shows up: every class has

* a small, highly discriminative **part** (about 10-20 % of the object): a saturated
  colour unique to the class (hues 18 degrees apart) with one of four patterns, and
* a large, weakly discriminative **body**: shape, colour and texture from a pool of four
  styles, each shared by five classes (class ``c`` uses style ``(c - 1) % 4``).

A classifier trained on image-level labels then finds the part much more than the body,
so CAM pseudo masks leave clear room for improvement, while bodies of the same class
still look alike across images, which cross-image matching can exploit.

Each image holds 1-3 objects of 1-2 classes on a textured background (low-frequency
noise, gratings and a gradient, different per image). Later objects occlude earlier ones
and the mask follows. Every image is drawn from its own generator seeded with
``(seed, index)``, so the same arguments always give byte-identical files.

Layout written under ``out_dir`` (names ``synth_000000`` ...)::

    JPEGImages/<name>.jpg              all images
    SegmentationClass/<name>.png       train and val (palette PNG, 255 = object border)
    SegmentationClassAug/<name>.png    all images
    ImageSets/Segmentation/train.txt   first images of train_aug (VOC: train in train_aug)
    ImageSets/Segmentation/train_aug.txt
    ImageSets/Segmentation/val.txt     disjoint from train_aug
    cls_labels.npy                     AffinityNet's dict name -> (20,) float32
    synthvoc_meta.json                 the arguments; written last (see is_complete)
"""
import json
import os
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from .cls_labels import VOC_CLASSES, labels_from_mask, save_cls_labels, voc_palette

NUM_CLASSES = len(VOC_CLASSES)
IGNORE_INDEX = 255
META_FILE = 'synthvoc_meta.json'
FORMAT_VERSION = 1
JPEG_QUALITY = 92

# Body styles, each shared by five classes, so the body alone does not tell the class.
# shape: superellipse exponent p (2 = ellipse, large = box, ~1 = diamond) and amplitude of
# random low-order radial harmonics (0 = smooth outline); texture drawn in object frame.
BODY_STYLES = (
    dict(p=2.0, wobble=0.0, colour=(150, 112, 84), texture='blotches'),
    dict(p=5.0, wobble=0.0, colour=(92, 122, 150), texture='stripes'),
    dict(p=2.0, wobble=0.22, colour=(122, 140, 92), texture='spots'),
    dict(p=1.3, wobble=0.08, colour=(140, 106, 140), texture='hatch'),
)
PART_PATTERNS = ('solid', 'stripes', 'checker', 'rings')
# Part area as a fraction of the body area before occlusion (the "~10-20 %" of the brief).
PART_FRACTION = (0.10, 0.18)
# Checks on the visible layout; a layout failing them is redrawn.
MIN_VISIBLE_FRACTION = 0.6  # of an object's own pixels left after occlusion
MAX_PART_FRACTION = 0.35  # visible part pixels / visible object pixels
MIN_PART_VISIBLE = 0.5  # of the part's own pixels left after occlusion
MIN_INTERIOR_PIXELS = 12  # non-border pixels per object, so every class shows in the mask
MAX_TRIES = 100


class SynthSample(NamedTuple):
    """One rendered SynthVOC image with its ground truth.

    Attributes:
        image (np.ndarray): ``(H, W, 3)`` uint8 RGB.
        mask (np.ndarray): ``(H, W)`` uint8 labels 0..20, 255 on object borders.
        instances (np.ndarray): ``(H, W)`` int32 visible object index + 1 (0 = none).
        part (np.ndarray): ``(H, W)`` bool, visible part pixels.
        objects (list[dict]): Per object in drawing order: ``class_id`` (1..20),
            ``body_style``, ``part_pixels`` and ``body_pixels`` (visible counts).
    """
    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray
    part: np.ndarray
    objects: List[dict]


def _size_hw(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    hw = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 32:
        raise ValueError(f'size must be an int or (H, W) with both >= 32, got {size!r}')
    return hw


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb) * 255.0


def _part_style(class_id: int) -> Tuple[np.ndarray, str]:
    """Unique part colour and pattern of a class (1..20)."""
    colour = _hsv_to_rgb((class_id - 1) / NUM_CLASSES, 0.9, 0.95)
    return colour, PART_PATTERNS[(class_id - 1) % len(PART_PATTERNS)]


def _smooth_noise(rng: np.random.Generator, hw: Tuple[int, int], cell: float) -> np.ndarray:
    """Bilinearly interpolated grid noise in [-1, 1] with a feature size of ``cell`` px."""
    h, w = hw
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw))
    ys = np.arange(h) / cell + rng.uniform(0, 1)
    xs = np.arange(w) / cell + rng.uniform(0, 1)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy  # (H, W)


def _background(rng: np.random.Generator, hw: Tuple[int, int]) -> np.ndarray:
    """Textured, muted background: base colour, noise, a grating and a gradient."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = rng.uniform(70, 190) + rng.uniform(-30, 30, size=3)
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float64)
    for _ in range(2):
        amp = rng.uniform(8, 30)
        tint = rng.uniform(0.5, 1.0, size=3)
        img += amp * _smooth_noise(rng, hw, rng.uniform(6, 32))[..., None] * tint
    angle, period = rng.uniform(0, np.pi), rng.uniform(8, 40)
    grating = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period +
                     rng.uniform(0, 2 * np.pi))
    img += rng.uniform(0, 18) * grating[..., None]
    gradient = (xx / w - 0.5) * rng.uniform(-1, 1) + (yy / h - 0.5) * rng.uniform(-1, 1)
    img += gradient[..., None] * rng.uniform(-40, 40, size=3)
    return img


def _object_frame(hw, centre, axes, angle):
    """Coordinates of every pixel in an object's unit frame: (u, v), each (H, W)."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - centre[0], yy - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    return (dx * c + dy * s) / axes[0], (-dx * s + dy * c) / axes[1]


def _superellipse_inside(u, v, p, harmonics):
    """Inside test of a superellipse whose radius is modulated by cos harmonics."""
    r = (np.abs(u)**p + np.abs(v)**p)**(1.0 / p)
    phi = np.arctan2(v, u)
    bound = np.ones_like(r)
    for k, amp, phase in harmonics:
        bound += amp * np.cos(k * phi + phase)
    return r <= bound


def _body_texture(rng, style, u, v, axes):
    """Body colour field (H, W, 3): shared style colour, jitter and style texture."""
    colour = np.array(style['colour'], dtype=np.float64) + rng.uniform(-14, 14, size=3)
    pu, pv = u * axes[0], v * axes[1]  # pixel units in the object frame
    kind = style['texture']
    if kind == 'blotches':
        field = _smooth_noise(rng, u.shape, 4.0) * 22
    elif kind == 'stripes':
        field = np.sign(np.sin(2 * np.pi * pv / 6.0)) * 14
    elif kind == 'spots':
        field = ((np.mod(pu, 7) - 3.5)**2 + (np.mod(pv, 7) - 3.5)**2 < 4) * -30.0
    else:  # hatch
        field = np.sign(np.sin(2 * np.pi * (pu + pv) / 5.0)) * 14
    return colour + field[..., None]


def _part_texture(class_id, u, v, rp):
    """Part colour field (H, W, 3): the class colour with the class pattern."""
    colour, pattern = _part_style(class_id)
    pu, pv = u * rp, v * rp  # pixel units around the part centre
    if pattern == 'solid':
        shade = np.ones_like(u)
    elif pattern == 'stripes':
        shade = np.where(np.mod(pu, 4) < 2, 1.0, 0.55)
    elif pattern == 'checker':
        shade = np.where((np.floor(pu / 2.5) + np.floor(pv / 2.5)) % 2 == 0, 1.0, 0.55)
    else:  # rings
        shade = np.where(np.mod(np.hypot(pu, pv), 4) < 2, 1.0, 0.55)
    return colour * shade[..., None]


def _border_band(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another label: a band 2 px wide on every border."""
    band = np.zeros(labels.shape, dtype=bool)
    diff_v = labels[1:, :] != labels[:-1, :]
    diff_h = labels[:, 1:] != labels[:, :-1]
    band[1:, :] |= diff_v
    band[:-1, :] |= diff_v
    band[:, 1:] |= diff_h
    band[:, :-1] |= diff_h
    return band


def _layout(rng: np.random.Generator, hw: Tuple[int, int]) -> List[dict]:
    """Draw classes, object count and geometry of one image."""
    num_cls = 1 if rng.random() < 0.6 else 2
    classes = [int(c) + 1 for c in rng.choice(NUM_CLASSES, size=num_cls, replace=False)]
    if num_cls == 1:
        num_obj = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
    else:
        num_obj = int(rng.choice([2, 3], p=[0.7, 0.3]))
    obj_classes = classes + [int(rng.choice(classes)) for _ in range(num_obj - num_cls)]
    obj_classes = [obj_classes[i] for i in rng.permutation(num_obj)]  # drawing order
    scale = {1: (0.18, 0.32), 2: (0.14, 0.26), 3: (0.12, 0.22)}[num_obj]
    h, w = hw
    objects = []
    for class_id in obj_classes:
        style = BODY_STYLES[(class_id - 1) % len(BODY_STYLES)]
        a = rng.uniform(*scale) * min(h, w)
        b = a * rng.uniform(0.6, 1.0)
        reach = 0.8 * a * (1 + style['wobble'])
        cx = rng.uniform(min(reach, w / 2), max(w - reach, w / 2))
        cy = rng.uniform(min(reach, h / 2), max(h - reach, h / 2))
        harmonics = [(int(k), rng.uniform(0.5, 1.0) * style['wobble'],
                      rng.uniform(0, 2 * np.pi)) for k in rng.choice([2, 3, 4, 5], 2,
                                                                      replace=False)]
        objects.append(
            dict(class_id=class_id, centre=(cx, cy), axes=(a, b),
                 angle=rng.uniform(0, np.pi), harmonics=harmonics,
                 part_dir=rng.uniform(-np.pi, np.pi),
                 part_frac=rng.uniform(*PART_FRACTION),
                 part_aspect=rng.uniform(0.8, 1.25), part_angle=rng.uniform(0, np.pi)))
    return objects


def _render(rng: np.random.Generator, hw: Tuple[int, int],
            layout: List[dict]) -> Optional[SynthSample]:
    """Render a layout; None if it fails the visibility checks."""
    img = _background(rng, hw)
    instances = np.zeros(hw, dtype=np.int32)
    part_vis = np.zeros(hw, dtype=bool)
    full = []  # (object pixels, part pixels) before occlusion
    for k, obj in enumerate(layout):
        style = BODY_STYLES[(obj['class_id'] - 1) % len(BODY_STYLES)]
        u, v = _object_frame(hw, obj['centre'], obj['axes'], obj['angle'])
        body = _superellipse_inside(u, v, style['p'], obj['harmonics'])
        if body.sum() < 16:
            return None
        # Part centre: 80 % of the way from the centre to the outline along part_dir.
        phi = obj['part_dir']
        cu, cv = np.cos(phi), np.sin(phi)
        bound = 1 + sum(a * np.cos(k_ * phi + ph) for k_, a, ph in obj['harmonics'])
        rho = 0.8 * bound / (np.abs(cu)**style['p'] + np.abs(cv)**style['p'])**(
            1 / style['p'])
        (a, b), ang = obj['axes'], obj['angle']
        px = obj['centre'][0] + a * rho * cu * np.cos(ang) - b * rho * cv * np.sin(ang)
        py = obj['centre'][1] + a * rho * cu * np.sin(ang) + b * rho * cv * np.cos(ang)
        rp = np.sqrt(obj['part_frac'] * body.sum() / np.pi)
        axes_p = (rp * np.sqrt(obj['part_aspect']), rp / np.sqrt(obj['part_aspect']))
        pu, pv = _object_frame(hw, (px, py), axes_p, obj['part_angle'])
        part = _superellipse_inside(pu, pv, 2.0, [])
        whole = body | part
        img[whole] = _body_texture(rng, style, u, v, obj['axes'])[whole]
        img[part] = _part_texture(obj['class_id'], pu, pv, rp)[part]
        instances[whole] = k + 1
        part_vis[whole] = part[whole]
        full.append((int(whole.sum()), int(part.sum())))

    img += rng.normal(0, 4, size=img.shape)
    labels = np.zeros(hw, dtype=np.uint8)
    objects = []
    for k, obj in enumerate(layout):
        visible = instances == k + 1
        labels[visible] = obj['class_id']
    band = _border_band(labels)
    for k, obj in enumerate(layout):
        visible = instances == k + 1
        n_vis, n_part = int(visible.sum()), int((visible & part_vis).sum())
        if (n_vis < MIN_VISIBLE_FRACTION * full[k][0] or n_part < MIN_PART_VISIBLE * full[k][1]
                or n_part > MAX_PART_FRACTION * n_vis
                or (visible & ~band).sum() < MIN_INTERIOR_PIXELS):
            return None
        objects.append(
            dict(class_id=obj['class_id'],
                 body_style=(obj['class_id'] - 1) % len(BODY_STYLES),
                 part_pixels=n_part, body_pixels=n_vis - n_part))
    mask = labels.copy()
    mask[band] = IGNORE_INDEX
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return SynthSample(image, mask, instances, part_vis & (instances > 0), objects)


def synth_sample(index: int, size: Union[int, Sequence[int]] = 96,
                 seed: int = 0) -> SynthSample:
    """Render SynthVOC image number ``index`` (what :func:`make_synthvoc` writes).

    Args:
        index (int): Image index; train_aug images come first, then val.
        size (int | tuple[int, int]): Image size, or (H, W). Defaults to 96.
        seed (int): Dataset seed. Defaults to 0.

    Returns:
        SynthSample: Image, mask, instance map, part map and per-object statistics.
    """
    hw = _size_hw(size)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    for _ in range(MAX_TRIES):
        sample = _render(rng, hw, _layout(rng, hw))
        if sample is not None:
            return sample
    raise RuntimeError(f'could not draw a valid SynthVOC layout for image {index} at '
                       f'size {hw} in {MAX_TRIES} tries; use a larger size')


def _normalise_args(num_train, num_val, size, seed, num_train_aug_extra) -> dict:
    num_train, num_val, seed = int(num_train), int(num_val), int(seed)
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train}, {num_val}')
    if num_train_aug_extra is None:
        num_train_aug_extra = num_train - num_train // 3
    num_train_aug_extra = int(num_train_aug_extra)
    if not 0 <= num_train_aug_extra < num_train:
        raise ValueError(f'num_train_aug_extra must be in [0, num_train) = [0, {num_train}),'
                         f' got {num_train_aug_extra}')
    return dict(num_train=num_train, num_val=num_val, size=list(_size_hw(size)), seed=seed,
                num_train_aug_extra=num_train_aug_extra)


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
                  num_train_aug_extra: Optional[int] = None) -> dict:
    """Write a SynthVOC dataset in PASCAL VOC 2012 layout (see the module docstring).

    ``synthvoc_meta.json`` is removed first and written last, so an interrupted run
    leaves a directory that :func:`is_complete` rejects.

    Args:
        out_dir (str): Output directory (created; existing files are overwritten).
        num_train (int): Images in ``train_aug.txt``. Defaults to 240.
        num_val (int): Images in ``val.txt``. Defaults to 60.
        size (int | tuple[int, int]): Image size, or (H, W). Defaults to 96.
        seed (int): Seed; image ``i`` uses ``SeedSequence([seed, i])``. Defaults to 0.
        num_train_aug_extra (int, optional): Images of train_aug that are not in
            ``train.txt`` (like VOC's SBD-only images). ``train.txt`` holds the first
            ``num_train - num_train_aug_extra``. Defaults to None, meaning
            ``num_train - num_train // 3`` (train.txt = a third of train_aug).

    Returns:
        dict: Summary: ``out_dir``, ``args``, ``splits`` (split -> names), ``objects``
        (name -> per-object stats as in :class:`SynthSample`) and ``class_counts``
        (images per class id in train_aug, index 0 = class 1).
    """
    args = _normalise_args(num_train, num_val, size, seed, num_train_aug_extra)
    meta_path = osp.join(out_dir, META_FILE)
    if osp.exists(meta_path):
        os.remove(meta_path)
    dirs = {k: osp.join(out_dir, k) for k in
            ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug',
             osp.join('ImageSets', 'Segmentation'))}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)

    n_aug, n_val = args['num_train'], args['num_val']
    names = [f'synth_{i:06d}' for i in range(n_aug + n_val)]
    splits = dict(train=names[:n_aug - args['num_train_aug_extra']],
                  train_aug=names[:n_aug], val=names[n_aug:])
    in_voc_seg = set(splits['train']) | set(splits['val'])
    palette = voc_palette().tobytes()
    labels, objects = {}, {}
    for i, name in enumerate(names):
        sample = synth_sample(i, args['size'], args['seed'])
        Image.fromarray(sample.image).save(
            osp.join(dirs['JPEGImages'], name + '.jpg'), format='JPEG',
            quality=JPEG_QUALITY, subsampling=0, optimize=False)
        _save_png(osp.join(dirs['SegmentationClassAug'], name + '.png'), sample.mask,
                  palette)
        if name in in_voc_seg:
            _save_png(osp.join(dirs['SegmentationClass'], name + '.png'), sample.mask,
                      palette)
        labels[name] = labels_from_mask(sample.mask, NUM_CLASSES, IGNORE_INDEX, name)
        objects[name] = sample.objects

    list_dir = dirs[osp.join('ImageSets', 'Segmentation')]
    for split, split_names in splits.items():
        _write_lines(osp.join(list_dir, f'{split}.txt'), split_names)
    save_cls_labels(osp.join(out_dir, 'cls_labels.npy'), labels)
    class_counts = np.sum([labels[n] for n in splits['train_aug']], axis=0).astype(int)

    meta = dict(generator='mmcyc.datasets.synthvoc', format_version=FORMAT_VERSION,
                args=args, counts={k: len(v) for k, v in splits.items()})
    tmp = meta_path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write('\n')
    os.replace(tmp, meta_path)
    return dict(out_dir=out_dir, args=args, splits=splits, objects=objects,
                class_counts=class_counts.tolist())


def is_complete(out_dir: str,
                num_train: int = 240,
                num_val: int = 60,
                size: Union[int, Sequence[int]] = 96,
                seed: int = 0,
                num_train_aug_extra: Optional[int] = None) -> bool:
    """Whether ``out_dir`` holds a finished SynthVOC made with exactly these arguments.

    Args:
        out_dir (str): Dataset directory.
        num_train, num_val, size, seed, num_train_aug_extra: As in
            :func:`make_synthvoc`.

    Returns:
        bool: True if the meta file (written last) exists and records these arguments.
    """
    try:
        with open(osp.join(out_dir, META_FILE)) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    args = _normalise_args(num_train, num_val, size, seed, num_train_aug_extra)
    return (meta.get('format_version') == FORMAT_VERSION and meta.get('args') == args
            and osp.isfile(osp.join(out_dir, 'cls_labels.npy')))


def synthvoc_summary(result: dict) -> str:
    """Human-readable summary of what :func:`make_synthvoc` returned."""
    a = result['args']
    n_obj = [len(v) for v in result['objects'].values()]
    part = [o['part_pixels'] / (o['part_pixels'] + o['body_pixels'])
            for objs in result['objects'].values() for o in objs]
    counts: Dict[str, int] = {k: len(v) for k, v in result['splits'].items()}
    lines = [
        f"SynthVOC in {result['out_dir']} (size {a['size'][0]}x{a['size'][1]}, "
        f"seed {a['seed']})",
        f"  splits: train {counts['train']}, train_aug {counts['train_aug']}, "
        f"val {counts['val']}",
        f'  objects per image: mean {np.mean(n_obj):.2f}; part fraction of object: '
        f'mean {np.mean(part):.3f}, max {np.max(part):.3f}',
        '  train_aug images per class: ' + ', '.join(
            f'{VOC_CLASSES[c]} {n}' for c, n in enumerate(result['class_counts'])),
    ]
    return '\n'.join(lines)
