# Copyright (c) mmcyc contributors. All rights reserved.
"""Drawing one SynthVOC image: layout, bodies, class-specific parts and the
ground truth (``mmcyc.datasets.synthvoc`` states what the data is built to
show and writes the dataset; this module renders a sample)."""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from .cls_labels import VOC_CLASSES

NUM_CLASSES = len(VOC_CLASSES)
IGNORE_INDEX = 255
VARIANTS = ('multi-part', 'single-part')

# Body styles, each shared by five classes, so that the body alone does not
# tell the class. Shape: superellipse exponent p (2 = ellipse, large = box,
# ~1 = diamond) and the amplitude of random radial harmonics (0 = smooth
# outline). The texture is drawn in the object's own frame.
BODY_STYLES = (
    dict(p=2.0, wobble=0.0, colour=(150, 112, 84), texture='blotches'),
    dict(p=5.0, wobble=0.0, colour=(92, 122, 150), texture='stripes'),
    dict(p=2.0, wobble=0.22, colour=(122, 140, 92), texture='spots'),
    dict(p=1.3, wobble=0.08, colour=(140, 106, 140), texture='hatch'),
)
PART_PATTERNS = ('solid', 'stripes', 'checker', 'rings')
# single-part: part area as a fraction of the body area before occlusion:
# small, like the discriminative regions (heads, wheels) a VOC classifier
# locks onto.
PART_FRACTION = (0.10, 0.18)
# multi-part: parts per class, the area of each (fraction of the body area)
# and how much of the class colour a weak part keeps (the rest is the body
# colour under it): 0.5 is still visible, but far less than the salient part.
NUM_PARTS = 2
MULTI_PART_FRACTION = (0.10, 0.16)
WEAK_PART_MIX = 0.5
# part map value of an object pixel: PART_CODE * class_id + role, plus
# SALIENT_FLAG on a salient part's pixels
PART_CODE = 8
SALIENT_FLAG = 4
# Checks on the visible layout; a layout failing them is drawn again.
MIN_VISIBLE_FRACTION = 0.6  # of an object's own pixels left after occlusion
MAX_PART_FRACTION = 0.35  # visible pixels of one part / of the object
MIN_PART_VISIBLE = 0.5  # of the part's own pixels left after occlusion
MIN_INTERIOR_PIXELS = 12  # off the border band, so each class is in the mask
MAX_TRIES = 100


class SynthSample(NamedTuple):
    """One rendered SynthVOC image with its ground truth.

    Attributes:
        image (np.ndarray): ``(H, W, 3)`` uint8 RGB.
        mask (np.ndarray): ``(H, W)`` uint8 ids 0..20, 255 on borders.
        instances (np.ndarray): ``(H, W)`` int32 index + 1 of the visible
            object (0 = background).
        part (np.ndarray): ``(H, W)`` bool, visible pixels of any
            class-specific part.
        objects (list[dict]): Per object in drawing order: ``class_id``
            (1..20), ``body_style``, the visible ``part_pixels`` (all parts)
            and ``body_pixels``, and ``parts``: per part ``part`` (k),
            ``salient`` (bool) and visible ``pixels``.
        part_map (np.ndarray): ``(H, W)`` uint8, ``PART_CODE * class_id +
            role + SALIENT_FLAG * salient`` on object pixels (role 0 = body,
            ``1 + k`` = part k), 0 on the background; see
            :func:`decode_part_map`.
        salient (np.ndarray): ``(H, W)`` bool, visible pixels of the
            objects' salient parts.
    """
    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray
    part: np.ndarray
    objects: List[dict]
    part_map: np.ndarray
    salient: np.ndarray


def _size_hw(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if np.isscalar(size):
        hw = (int(size), int(size))
    else:
        hw = tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 32:
        raise ValueError(
            f'size must be an int or (H, W), each >= 32, got {size!r}')
    return hw


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    return np.array(rgb[i]) * 255.0


def _part_style(class_id: int, part: int = 0) -> Tuple[np.ndarray, str]:
    """Unique colour and pattern of part ``part`` of a class (1..20).

    Part 0: hue ``(c - 1) / 20``, bright. Part 1: a hue half-way between
    part 0's, turned by 180 degrees, darker, another pattern.
    """
    if part == 0:
        colour = _hsv_to_rgb((class_id - 1) / NUM_CLASSES, 0.9, 0.95)
        return colour, PART_PATTERNS[(class_id - 1) % len(PART_PATTERNS)]
    hue = ((class_id - 1) / NUM_CLASSES + 0.5 / NUM_CLASSES + 0.5) % 1.0
    colour = _hsv_to_rgb(hue, 0.8, 0.75)
    return colour, PART_PATTERNS[(class_id + 1) % len(PART_PATTERNS)]


def _smooth_noise(rng: np.random.Generator, hw: Tuple[int, int],
                  cell: float) -> np.ndarray:
    """Bilinearly interpolated grid noise in [-1, 1], features ``cell`` px."""
    h, w = hw
    grid = rng.uniform(-1.0, 1.0, size=(int(np.ceil(h / cell)) + 2,
                                        int(np.ceil(w / cell)) + 2))
    ys = np.arange(h) / cell + rng.uniform(0, 1)
    xs = np.arange(w) / cell + rng.uniform(0, 1)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy  # (H, W)


def _background(rng: np.random.Generator, hw: Tuple[int, int]) -> np.ndarray:
    """Muted textured background: noise, a grating and a colour gradient."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = rng.uniform(70, 190) + rng.uniform(-30, 30, size=3)
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float64)
    for _ in range(2):
        amp = rng.uniform(8, 30)
        tint = rng.uniform(0.5, 1.0, size=3)
        noise = _smooth_noise(rng, hw, rng.uniform(6, 32))
        img += amp * noise[..., None] * tint
    angle, period = rng.uniform(0, np.pi), rng.uniform(8, 40)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    grating = np.sin(2 * np.pi * phase + rng.uniform(0, 2 * np.pi))
    img += rng.uniform(0, 18) * grating[..., None]
    gradient = ((xx / w - 0.5) * rng.uniform(-1, 1) +
                (yy / h - 0.5) * rng.uniform(-1, 1))
    img += gradient[..., None] * rng.uniform(-40, 40, size=3)
    return img  # (H, W, 3) float


def _object_frame(hw, centre, axes, angle):
    """Every pixel in an object's unit frame: (u, v), each (H, W)."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - centre[0], yy - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    return (dx * c + dy * s) / axes[0], (-dx * s + dy * c) / axes[1]


def _outline(phi, harmonics):
    """Radius factor of the outline at angle ``phi``: 1 + sum of harmonics."""
    bound = 1.0
    for k, amp, phase in harmonics:
        bound = bound + amp * np.cos(k * phi + phase)
    return bound


def _inside(u, v, p, harmonics):
    """Inside test of a superellipse with a harmonic-modulated radius."""
    r = (np.abs(u)**p + np.abs(v)**p)**(1.0 / p)
    return r <= _outline(np.arctan2(v, u), harmonics)


def _body_texture(rng, style, u, v, axes):
    """Body colour field (H, W, 3): style colour, jitter, style texture."""
    colour = np.array(style['colour'], np.float64)
    colour = colour + rng.uniform(-14, 14, size=3)
    pu, pv = u * axes[0], v * axes[1]  # pixel units in the object frame
    kind = style['texture']
    if kind == 'blotches':
        field = _smooth_noise(rng, u.shape, 4.0) * 22
    elif kind == 'stripes':
        field = np.sign(np.sin(2 * np.pi * pv / 6.0)) * 14
    elif kind == 'spots':
        spot = (np.mod(pu, 7) - 3.5)**2 + (np.mod(pv, 7) - 3.5)**2 < 4
        field = spot * -30.0
    else:  # hatch
        field = np.sign(np.sin(2 * np.pi * (pu + pv) / 5.0)) * 14
    return colour + field[..., None]


def _part_texture(class_id, part, u, v, rp):
    """Part colour field (H, W, 3): the part's colour and pattern."""
    colour, pattern = _part_style(class_id, part)
    pu, pv = u * rp, v * rp  # pixel units around the part centre
    if pattern == 'solid':
        light = np.ones(u.shape, dtype=bool)
    elif pattern == 'stripes':
        light = np.mod(pu, 4) < 2
    elif pattern == 'checker':
        light = (np.floor(pu / 2.5) + np.floor(pv / 2.5)) % 2 == 0
    else:  # rings
        light = np.mod(np.hypot(pu, pv), 4) < 2
    return colour * np.where(light, 1.0, 0.55)[..., None]


def _border_band(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another label: 2 px along each border."""
    band = np.zeros(labels.shape, dtype=bool)
    diff_v = labels[1:, :] != labels[:-1, :]
    diff_h = labels[:, 1:] != labels[:, :-1]
    band[1:, :] |= diff_v
    band[:-1, :] |= diff_v
    band[:, 1:] |= diff_h
    band[:, :-1] |= diff_h
    return band


def _multi_parts(rng: np.random.Generator) -> List[dict]:
    """Geometry of the NUM_PARTS parts of one object; one is salient."""
    salient = int(rng.integers(NUM_PARTS))
    first = rng.uniform(-np.pi, np.pi)
    parts = []
    for k in range(NUM_PARTS):
        parts.append(
            dict(
                part=k,
                salient=k == salient,
                dir=first + 2 * np.pi * k / NUM_PARTS +
                rng.uniform(-0.35, 0.35),
                frac=rng.uniform(*MULTI_PART_FRACTION),
                aspect=rng.uniform(0.8, 1.25),
                angle=rng.uniform(0, np.pi)))
    return parts


def _layout(rng: np.random.Generator, hw: Tuple[int, int],
            variant: str) -> List[dict]:
    """Draw the classes, the object count and the geometry of one image."""
    num_cls = 1 if rng.random() < 0.6 else 2
    picked = rng.choice(NUM_CLASSES, size=num_cls, replace=False)
    classes = [int(c) + 1 for c in picked]
    if num_cls == 1:
        num_obj = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
    else:
        num_obj = int(rng.choice([2, 3], p=[0.7, 0.3]))
    extra = [int(rng.choice(classes)) for _ in range(num_obj - num_cls)]
    order = rng.permutation(num_obj)  # drawing order: later ones occlude
    obj_classes = [(classes + extra)[i] for i in order]
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
        orders = rng.choice([2, 3, 4, 5], 2, replace=False)
        harmonics = [(int(k), rng.uniform(0.5, 1.0) * style['wobble'],
                      rng.uniform(0, 2 * np.pi)) for k in orders]
        angle = rng.uniform(0, np.pi)
        if variant == 'single-part':  # the draws of format 1, in its order
            parts = [
                dict(
                    part=0,
                    salient=True,
                    dir=rng.uniform(-np.pi, np.pi),
                    frac=rng.uniform(*PART_FRACTION),
                    aspect=rng.uniform(0.8, 1.25),
                    angle=rng.uniform(0, np.pi))
            ]
        else:
            parts = _multi_parts(rng)
        objects.append(
            dict(
                class_id=class_id,
                centre=(cx, cy),
                axes=(a, b),
                angle=angle,
                harmonics=harmonics,
                parts=parts))
    return objects


def _part_region(hw, obj, part, style, body_pixels):
    """One part of an object: centre on the way out, area from its frac."""
    # Centre: 80 % of the way from the object centre to the outline.
    phi = part['dir']
    cu, cv = np.cos(phi), np.sin(phi)
    norm = (np.abs(cu)**style['p'] + np.abs(cv)**style['p'])**(1 / style['p'])
    rho = 0.8 * _outline(phi, obj['harmonics']) / norm
    (a, b), ang = obj['axes'], obj['angle']
    du, dv = a * rho * cu, b * rho * cv  # offset in the rotated frame
    px = obj['centre'][0] + du * np.cos(ang) - dv * np.sin(ang)
    py = obj['centre'][1] + du * np.sin(ang) + dv * np.cos(ang)
    rp = np.sqrt(part['frac'] * body_pixels / np.pi)
    stretch = np.sqrt(part['aspect'])
    pu, pv = _object_frame(hw, (px, py), (rp * stretch, rp / stretch),
                           part['angle'])
    return _inside(pu, pv, 2.0, []), pu, pv, rp


def _render(rng: np.random.Generator, hw: Tuple[int, int],
            layout: List[dict]) -> Optional[SynthSample]:
    """Render a layout; None if it fails the visibility checks."""
    img = _background(rng, hw)
    instances = np.zeros(hw, dtype=np.int32)
    role = np.zeros(hw, dtype=np.int64)  # 0 body, 1 + k part k
    salient = np.zeros(hw, dtype=bool)
    full = []  # (object pixels, [part pixels]) before occlusion
    for k, obj in enumerate(layout):
        style = BODY_STYLES[(obj['class_id'] - 1) % len(BODY_STYLES)]
        u, v = _object_frame(hw, obj['centre'], obj['axes'], obj['angle'])
        body = _inside(u, v, style['p'], obj['harmonics'])
        if body.sum() < 16:
            return None
        regions = [
            _part_region(hw, obj, part, style, body.sum())
            for part in obj['parts']
        ]
        whole = body.copy()
        for region in regions:
            whole |= region[0]
        body_colour = _body_texture(rng, style, u, v, obj['axes'])
        img[whole] = body_colour[whole]
        instances[whole] = k + 1
        role[whole] = 0
        salient[whole] = False
        for part, (inside, pu, pv, rp) in zip(obj['parts'], regions):
            colour = _part_texture(obj['class_id'], part['part'], pu, pv, rp)
            if not part['salient']:  # weak: mixed into the body colour
                colour = (WEAK_PART_MIX * colour +
                          (1 - WEAK_PART_MIX) * body_colour)
            img[inside] = colour[inside]
            role[inside] = 1 + part['part']
            salient[inside] = part['salient']
        full.append((int(whole.sum()),
                     [int(region[0].sum()) for region in regions]))
    img += rng.normal(0, 4, size=img.shape)

    labels = np.zeros(hw, dtype=np.uint8)
    for k, obj in enumerate(layout):
        labels[instances == k + 1] = obj['class_id']
    band = _border_band(labels)
    objects = []
    for k, obj in enumerate(layout):
        visible = instances == k + 1
        n_vis = int(visible.sum())
        parts = []
        for part, n_full in zip(obj['parts'], full[k][1]):
            n_part = int((visible & (role == 1 + part['part'])).sum())
            if (n_part < MIN_PART_VISIBLE * n_full
                    or n_part > MAX_PART_FRACTION * n_vis):
                return None
            parts.append(
                dict(
                    part=part['part'],
                    salient=bool(part['salient']),
                    pixels=n_part))
        n_parts = sum(p['pixels'] for p in parts)
        if (n_vis < MIN_VISIBLE_FRACTION * full[k][0]
                or (visible & ~band).sum() < MIN_INTERIOR_PIXELS):
            return None
        objects.append(
            dict(
                class_id=obj['class_id'],
                body_style=(obj['class_id'] - 1) % len(BODY_STYLES),
                part_pixels=n_parts,
                body_pixels=n_vis - n_parts,
                parts=parts))
    mask = labels.copy()
    mask[band] = IGNORE_INDEX
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    on_object = instances > 0
    salient &= on_object
    part_map = np.where(
        on_object,
        PART_CODE * labels.astype(np.int64) + role + SALIENT_FLAG * salient,
        0).astype(np.uint8)
    return SynthSample(image, mask, instances, (role > 0) & on_object,
                       objects, part_map, salient)


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(
            f'variant must be one of {VARIANTS}, got {variant!r}')
    return variant


def synth_sample(index: int,
                 size: Union[int, Sequence[int]] = 96,
                 seed: int = 0,
                 variant: str = 'multi-part') -> SynthSample:
    """Render SynthVOC image ``index``, as :func:`make_synthvoc` writes it.

    Args:
        index (int): Image index; train_aug images come first, then val.
        size (int | tuple[int, int]): Image size, or (H, W). Defaults to 96.
        seed (int): Dataset seed. Defaults to 0.
        variant (str): ``'multi-part'`` or ``'single-part'`` (see the module
            docstring). Defaults to ``'multi-part'``.

    Returns:
        SynthSample: Image, mask, instance map, part maps and per-object
        statistics.
    """
    hw = _size_hw(size)
    _check_variant(variant)
    seq = np.random.SeedSequence([int(seed), int(index)])
    rng = np.random.default_rng(seq)
    for _ in range(MAX_TRIES):
        sample = _render(rng, hw, _layout(rng, hw, variant))
        if sample is not None:
            return sample
    raise RuntimeError(
        f'could not draw a valid SynthVOC layout for image {index} at size '
        f'{hw} in {MAX_TRIES} tries; use a larger size')
