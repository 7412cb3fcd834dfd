# Copyright (c) mmcyc contributors. All rights reserved.
"""Cross-image similarity maps W^f (paper Fig. 3) as one picture.

One row per source point: the source image with the point as a red dot, then
each target image with the point's ``W^f`` (Eq. 3-4) over it as a heat map.
The drawing is pure numpy / OpenCV on arrays; ``tools/analysis_tools/
similarity_maps.py`` computes the maps with a trained CyCSNet and sends the
picture to mmengine's visualizer backends (``Visualizer.add_image``).

``W^f`` is a softmax over the target's positions (each map sums to 1), so
its absolute values shrink with the target's size; every map is therefore
stretched to its own [min, max] before the colour map is applied, which
shows *where* the point matches, not how strongly compared with other maps.

Why not mmengine's ``Visualizer.draw_featmap``: it does the same min-max
stretch and blend, but always with OpenCV's JET colour map, whose brightness
does not grow with the value (its maximum is a dark red, its middle a bright
yellow-green), so the best match is not the brightest spot; here the colour
map is a parameter and defaults to a monotone one (``inferno``).
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

RED = (255, 0, 0)
WHITE = (255, 255, 255)


def _check_image(image: np.ndarray, what: str) -> None:
    if not (isinstance(image, np.ndarray) and image.ndim == 3
            and image.shape[2] == 3 and image.dtype == np.uint8):
        raise ValueError(f'{what} must be an RGB uint8 array (H, W, 3), got '
                         f'{getattr(image, "dtype", type(image))} '
                         f'{getattr(image, "shape", "")}')


def overlay_heatmap(image: np.ndarray,
                    heat: np.ndarray,
                    alpha: float = 0.5,
                    cmap: str = 'inferno') -> np.ndarray:
    """Blend a map, stretched to [0, 1] and coloured, over an image.

    Args:
        image (np.ndarray): RGB image, shape (H, W, 3), uint8.
        heat (np.ndarray): Map of the same (H, W), any float values; scaled
            by its own min and max (a constant map becomes 0).
        alpha (float): Weight of the heat map, in [0, 1]. Defaults to 0.5.
        cmap (str): A matplotlib colour map. Its brightness should grow with
            the value (``inferno``, ``viridis``, ``magma``) so that the
            brightest spot is the best match. Defaults to 'inferno'.

    Returns:
        np.ndarray: ``(1 - alpha) image + alpha cmap(heat)``, shape
        (H, W, 3), uint8.
    """
    import matplotlib

    _check_image(image, 'image')
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape != image.shape[:2]:
        raise ValueError(f'heat must have the image size {image.shape[:2]}, '
                         f'got {heat.shape}')
    if not 0 <= alpha <= 1:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    low, high = float(heat.min()), float(heat.max())
    norm = (heat - low) / (high - low) if high > low else \
        np.zeros_like(heat)  # (H, W) in [0, 1]
    colour = matplotlib.colormaps[cmap](norm)[..., :3] * 255  # (H, W, 3)
    blend = (1 - alpha) * image.astype(np.float32) + alpha * colour
    return np.clip(np.rint(blend), 0, 255).astype(np.uint8)


def _fit_cell(image: np.ndarray, cell_size: int) -> Tuple[np.ndarray, float,
                                                           Tuple[int, int]]:
    """Scale an image so that its longer side is ``cell_size`` and centre it
    on a white square; return the cell, the scale and the (top, left)
    offset."""
    height, width = image.shape[:2]
    scale = cell_size / max(height, width)
    new_h = max(1, int(round(height * scale)))
    new_w = max(1, int(round(width * scale)))
    if (new_h, new_w) != (height, width):
        image = cv2.resize(image, (new_w, new_h),
                           interpolation=cv2.INTER_LINEAR)
    top, left = (cell_size - new_h) // 2, (cell_size - new_w) // 2
    cell = np.full((cell_size, cell_size, 3), 255, dtype=np.uint8)
    cell[top:top + new_h, left:left + new_w] = image
    return cell, scale, (top, left)


def _title_strip(titles: Sequence[str], cell_size: int,
                 margin: int) -> np.ndarray:
    """A white strip with each column's title, left-aligned over its cell."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1
    (_, text_h), baseline = cv2.getTextSize('Ag', font, scale, thickness)
    height = text_h + baseline + 2 * margin
    width = margin + len(titles) * (cell_size + margin)
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    for col, title in enumerate(titles):
        text = str(title)
        while text and cv2.getTextSize(text, font, scale,
                                       thickness)[0][0] > cell_size:
            text = text[:-1]  # clip titles wider than the cell
        cv2.putText(strip, text, (margin + col * (cell_size + margin),
                                  margin + text_h), font, scale, (0, 0, 0),
                    thickness, cv2.LINE_AA)
    return strip


def draw_similarity_maps(source: np.ndarray,
                         points: Sequence[Tuple[float, float]],
                         targets: Sequence[np.ndarray],
                         maps: Sequence[np.ndarray],
                         titles: Optional[Sequence[str]] = None,
                         cell_size: Optional[int] = None,
                         alpha: float = 0.5,
                         cmap: str = 'inferno',
                         margin: int = 4,
                         dot_radius: Optional[int] = None) -> np.ndarray:
    """Draw the paper's Fig. 3: source points and their W^f on targets.

    The grid has one row per point and ``1 + T`` columns: the source with
    that row's point as a red dot, then each target with the point's map
    overlaid by :func:`overlay_heatmap`. Every image is scaled so that its
    longer side is ``cell_size`` and centred on a white square cell; cells
    are ``margin`` pixels apart.

    Args:
        source (np.ndarray): Source image, shape (H, W, 3), RGB uint8.
        points (Sequence[tuple[float, float]]): P points (y, x) in the
            source's pixels, inside [0, H) x [0, W).
        targets (Sequence[np.ndarray]): T target images, each (H_t, W_t, 3),
            RGB uint8.
        maps (Sequence[np.ndarray]): For each target, the points' W^f
            upsampled to the target's size, shape (P, H_t, W_t).
        titles (Sequence[str], optional): ``1 + T`` column titles (source
            first), drawn above the grid. Defaults to None (no titles).
        cell_size (int, optional): Side of a cell in pixels. Defaults to
            None: the longest side among the source and the targets (no
            image is shrunk).
        alpha (float): Heat map weight of the blend. Defaults to 0.5.
        cmap (str): Matplotlib colour map. Defaults to 'inferno' (brighter
            is more similar).
        margin (int): White pixels around and between cells, >= 0.
            Defaults to 4.
        dot_radius (int, optional): Radius of the red dot. Defaults to None:
            ``max(2, cell_size // 40)``.

    Returns:
        np.ndarray: The grid, RGB uint8, shape
        (title_h + margin + P (cell_size + margin),
        margin + (1 + T) (cell_size + margin), 3), ``title_h`` 0 without
        titles.
    """
    _check_image(source, 'source')
    if len(points) == 0:
        raise ValueError('need at least one source point')
    if len(targets) == 0 or len(targets) != len(maps):
        raise ValueError(f'need one map stack per target and at least one '
                         f'target, got {len(targets)} targets and {len(maps)} '
                         'map stacks')
    height, width = source.shape[:2]
    for y, x in points:
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f'point (y={y}, x={x}) is outside the source '
                             f'image of size (H={height}, W={width})')
    for index, (target, stack) in enumerate(zip(targets, maps)):
        _check_image(target, f'target {index}')
        expected = (len(points), ) + target.shape[:2]
        if np.shape(stack) != expected:
            raise ValueError(f'maps[{index}] must have shape (P, H_t, W_t) = '
                             f'{expected}, got {np.shape(stack)}')
    if titles is not None and len(titles) != 1 + len(targets):
        raise ValueError(f'titles must name the source and the '
                         f'{len(targets)} targets, got {len(titles)}')
    if margin < 0:
        raise ValueError(f'margin must be >= 0, got {margin}')
    if cell_size is None:
        cell_size = max(max(image.shape[:2]) for image in (source, *targets))
    if cell_size < 1:
        raise ValueError(f'cell_size must be >= 1, got {cell_size}')
    radius = dot_radius if dot_radius is not None else max(2, cell_size // 40)

    step = cell_size + margin
    grid = np.full((margin + len(points) * step,
                    margin + (1 + len(targets)) * step, 3),
                   255, dtype=np.uint8)

    def place(row: int, col: int, cell: np.ndarray) -> None:
        top, left = margin + row * step, margin + col * step
        grid[top:top + cell_size, left:left + cell_size] = cell

    for row, (y, x) in enumerate(points):
        cell, scale, (top, left) = _fit_cell(source, cell_size)
        centre = (int(round(left + (x + 0.5) * scale - 0.5)),
                  int(round(top + (y + 0.5) * scale - 0.5)))  # (x, y)
        cv2.circle(cell, centre, radius + 1, WHITE, -1, cv2.LINE_AA)
        cv2.circle(cell, centre, radius, RED, -1, cv2.LINE_AA)
        place(row, 0, cell)
        for col, (target, stack) in enumerate(zip(targets, maps), start=1):
            blended = overlay_heatmap(target, stack[row], alpha, cmap)
            place(row, col, _fit_cell(blended, cell_size)[0])
    if titles is not None:
        grid = np.concatenate([_title_strip(titles, cell_size, margin), grid])
    return grid
