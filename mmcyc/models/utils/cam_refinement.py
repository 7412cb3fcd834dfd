# Copyright (c) mmcyc contributors. All rights reserved.
"""CAM refinement with CyCSNet features as pure tensor functions (Eq. 14).

For a target image t with CAM ``C^t``, feature map ``F_t`` and label ``y_t``,
and a set of S reference vectors ``V`` (each taken from some other image s
where ``C^s_c > beta1``, tagged with that class c), the chain used by
``CAMRefiner`` is::

    similarity_maps(V, F_t)            (Eq. 3-4)  -> W^f          (S, h*w)
    class_refinement_maps(V, c, F_t)              -> R_c          (C, h, w)
        R_c = max over the references of class c of epsilon * W^f
    apply_refinement(C^t, R, update, Bg)  (Eq. 14) -> refined CAM (C, H, W)
        R -> (H, W) by cell replication (grid_to_pixels), then
        C^t_c <- max(C^t_c, R_c) where R_c > Bg, for c in y_t and in c(V)

``refine_cam`` runs the whole chain. Everything is batched over the
reference vectors (a loop over chunks of them bounds memory, never one over
single vectors) and computed in fp32 on the device of ``F_t``.

Resolution of Eq. 14: ``W^f`` lives on t's feature grid (h, w) (Eq. 3-4)
while ``C^t`` is stored at the image size (H, W). Eq. 14 is applied at
(H, W) with each ``W^f`` brought there by AffinityNet's (psa's) alignment of
a stride-s grid: the image is padded at the bottom / right to a multiple of
s and cell (i, j) covers the pixels ``[s i, s i + s) x [s j, s j + s)``, so
pixel (y, x) takes the value of cell ``(y // s, x // s)``, with ``s =
max(ceil(H / h), ceil(W / w))`` unless given (see
:func:`~mmcyc.models.utils.cam.grid_stride`; sizes that no stride fits,
``(h - 1) s < H <= h s`` and the same for W, are a ValueError). For
(H, W) = (h, w) this is Eq. 14 on the grid itself.

Note:
    Eq. 14 applied one reference after the other equals one update with the
    per-class maximum: ``max(C, eps W_1) ... max(., eps W_S)`` restricted to
    the references above ``Bg / eps`` at a pixel is ``max(C, max_s eps
    W_s)`` whenever that maximum is above ``Bg`` and ``C`` otherwise, so the
    order of the references does not matter. This needs every ``W_s`` at a
    pixel to be the value of a single grid position: cell replication
    selects one cell per pixel, so it commutes with the maximum over the
    references and with the threshold, and ``R`` may be replicated after
    the maximum. A bilinear (or any averaging) upsampling does not commute:
    between cells the upsampled maximum is >= the maximum of the upsampled
    maps and can pass ``Bg`` where no single reference does.
"""
from typing import Optional

import torch

from .cam import grid_stride, grid_to_pixels
from .cycle_consistency import scaled_softmax


def _check_chunk_size(chunk_size: Optional[int]) -> None:
    if chunk_size is not None and (not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ValueError(
            f'chunk_size must be a positive int or None, got {chunk_size!r}')


def similarity_maps(vectors: torch.Tensor,
                    feat: torch.Tensor,
                    alpha: float,
                    eps: float = 1e-6) -> torch.Tensor:
    """Eq. 3-4: ``W^f = softmax(alpha V . F_t / max)`` for S vectors at once.

    Computed in fp32 whatever the inputs' dtype (a bank stores fp16).

    Args:
        vectors (Tensor): Reference vectors ``V_(x,y)``, shape (S, D).
        feat (Tensor): Target feature map ``F_t``, shape (D, h, w).
        alpha (float): Softmax scale (20 in the paper).
        eps (float): Smallest divisor of the max-scaling (see
            :func:`~mmcyc.models.utils.cycle_consistency.scaled_softmax`).

    Returns:
        Tensor: ``W^f`` over the target's positions, shape (S, h * w), fp32;
        every row sums to 1.
    """
    if vectors.dim() != 2 or feat.dim() != 3 or \
            vectors.shape[1] != feat.shape[0]:
        raise ValueError(f'expected vectors (S, D) and feat (D, h, w), got '
                         f'{tuple(vectors.shape)} and {tuple(feat.shape)}')
    flat = feat.float().flatten(1)  # (D, P)
    sim = vectors.to(flat.device, torch.float32) @ flat  # (S, P)
    return scaled_softmax(sim, alpha, eps)  # (S, P)


def class_refinement_maps(vectors: torch.Tensor,
                          classes: torch.Tensor,
                          feat: torch.Tensor,
                          num_classes: int,
                          alpha: float,
                          epsilon: float,
                          chunk_size: Optional[int] = 4096,
                          eps: float = 1e-6) -> torch.Tensor:
    """``R_c(i, j) = max over the references of class c of eps W^f(i, j)``.

    The references are processed ``chunk_size`` at a time; each chunk's
    ``epsilon * W^f`` is max-reduced into its classes' maps with one
    ``scatter_reduce('amax')``, so the (S, h*w) similarities never exist all
    at once. Peak extra memory is about ``3 * 4 * chunk_size * h * w`` bytes.

    Args:
        vectors (Tensor): Reference vectors, shape (S, D) (any float dtype).
        classes (Tensor): Class index of each reference, shape (S, ), int,
            in ``[0, num_classes)``.
        feat (Tensor): Target feature map ``F_t``, shape (D, h, w).
        num_classes (int): C.
        alpha (float): Softmax scale of Eq. 4.
        epsilon (float): ``epsilon`` of Eq. 14 (2.0 in the paper).
        chunk_size (int, optional): References per chunk; None for all at
            once. Defaults to 4096.
        eps (float): Smallest divisor of the max-scaling.

    Returns:
        Tensor: ``R``, shape (C, h, w), fp32 on ``feat``'s device; 0 for the
        classes without a reference (``W^f > 0``, so every class with a
        reference has a positive map).
    """
    _check_chunk_size(chunk_size)
    if classes.shape != vectors.shape[:1]:
        raise ValueError(f'classes must have shape ({vectors.shape[0]}, ), '
                         f'got {tuple(classes.shape)}')
    _, height, width = feat.shape
    refinement = feat.new_zeros((num_classes, height * width),
                                dtype=torch.float32)  # (C, P)
    if vectors.shape[0] == 0:
        return refinement.view(num_classes, height, width)
    if int(classes.min()) < 0 or int(classes.max()) >= num_classes:
        raise ValueError(f'reference classes must be in [0, {num_classes}), '
                         f'got {classes.unique().tolist()}')
    classes = classes.to(feat.device, torch.int64)
    step = chunk_size or vectors.shape[0]
    for start in range(0, vectors.shape[0], step):
        weight = similarity_maps(vectors[start:start + step], feat, alpha,
                                 eps)  # (s, P)
        index = classes[start:start + step, None].expand_as(weight)  # (s, P)
        refinement.scatter_reduce_(
            0, index, weight * epsilon, reduce='amax', include_self=True)
    return refinement.view(num_classes, height, width)  # (C, h, w)


def apply_refinement(cam: torch.Tensor,
                     refinement: torch.Tensor,
                     update: torch.Tensor,
                     bg_score: float,
                     stride: Optional[int] = None) -> torch.Tensor:
    """Eq. 14: ``C_c <- max(C_c, R_c)`` where ``R_c > Bg``, for updated c.

    ``R_c > Bg`` is Eq. 14's condition ``W^f > Bg / epsilon`` for the
    maximising reference (``R_c = epsilon W^f``, ``epsilon > 0``).

    The refinement maps live on the feature grid (h, w) while a CAM is
    stored at the image size (H, W). When they differ, ``R`` is brought to
    (H, W) by cell replication in psa's alignment (pixel (y, x) takes cell
    ``(y // s, x // s)``, :func:`~mmcyc.models.utils.cam.grid_to_pixels`)
    before the threshold and the maximum. Replication selects one cell per
    pixel, so it commutes with the per-class maximum and with the
    threshold: the result is exactly Eq. 14 applied reference by reference
    to each ``W^f`` replicated to (H, W) (see the module's note). For
    (H, W) = (h, w) it is Eq. 14 on the grid.

    Args:
        cam (Tensor): Normalised CAM ``C^t``, shape (C, H, W).
        refinement (Tensor): ``R``, shape (C, h, w).
        update (Tensor): Classes that may change, shape (C, ), bool.
        bg_score (float): ``Bg`` (0.2 in the paper).
        stride (int, optional): The grid's stride s; None infers ``s =
            max(ceil(H / h), ceil(W / w))`` (the network's stride when the
            grid has at least s cells a side). Defaults to None.

    Returns:
        Tensor: The refined CAM, shape (C, H, W), ``cam``'s dtype. Never
        below ``cam``; classes outside ``update`` are unchanged.

    Raises:
        ValueError: If the shapes disagree, or (H, W) does not lie on the
            (h, w) grid: ``(h - 1) s < H <= h s`` (same for W) fails.
    """
    if cam.dim() != 3 or refinement.dim() != 3 or \
            cam.shape[0] != refinement.shape[0] or \
            update.shape != cam.shape[:1]:
        raise ValueError(
            f'expected cam (C, H, W), refinement (C, h, w) and update (C, ); '
            f'got {tuple(cam.shape)}, {tuple(refinement.shape)} and '
            f'{tuple(update.shape)}')
    refinement = refinement.to(cam.device, torch.float32)
    refinement = grid_to_pixels(refinement, cam.shape[1:],
                                stride)  # (C, H, W)
    take = update.to(cam.device, torch.bool)[:, None, None] & (
        refinement > bg_score)  # (C, H, W)
    refined = torch.maximum(cam.float(), refinement).to(cam.dtype)
    return torch.where(take, refined, cam)


def refine_cam(cam: torch.Tensor,
               feat: torch.Tensor,
               vectors: torch.Tensor,
               classes: torch.Tensor,
               labels: torch.Tensor,
               alpha: float = 20.0,
               epsilon: float = 2.0,
               bg_score: float = 0.2,
               chunk_size: Optional[int] = 4096,
               stride: Optional[int] = None) -> torch.Tensor:
    """Eq. 14 for a whole set of references at once.

    Only classes in ``y_t`` that have at least one reference change;
    references of classes outside ``y_t`` are dropped before any work.
    Equals Eq. 14 applied reference by reference at the CAM's size (H, W),
    each ``W^f`` replicated from the feature grid cell by cell in psa's
    alignment (see :func:`apply_refinement`).

    Args:
        cam (Tensor): Target CAM ``C^t``, shape (C, H, W).
        feat (Tensor): Target feature map ``F_t``, shape (D, h, w).
        vectors (Tensor): Reference vectors, shape (S, D).
        classes (Tensor): Their classes, shape (S, ), int.
        labels (Tensor): Multi-hot ``y_t``, shape (C, ).
        alpha (float): Softmax scale of Eq. 4. Defaults to 20.0.
        epsilon (float): ``epsilon`` of Eq. 14. Defaults to 2.0.
        bg_score (float): ``Bg`` of Eq. 14. Defaults to 0.2.
        chunk_size (int, optional): References per chunk (see
            :func:`class_refinement_maps`). Defaults to 4096.
        stride (int, optional): Stride of the feature grid relative to the
            CAM; None infers it (see :func:`apply_refinement`). Defaults to
            None.

    Returns:
        Tensor: Refined CAM, shape (C, H, W).

    Raises:
        ValueError: If (H, W) does not lie on the (h, w) grid of ``feat``
            (checked before any work).
    """
    num_classes = cam.shape[0]
    if labels.shape != (num_classes, ):
        raise ValueError(f'labels must have shape ({num_classes}, ), got '
                         f'{tuple(labels.shape)}')
    if cam.dim() == 3 and feat.dim() == 3:
        grid_stride(cam.shape[1:], feat.shape[1:], stride)  # fail early
    in_label = labels.to(classes.device) > 0.5  # (C, )
    keep = in_label[classes.long()]  # (S, )
    vectors, classes = vectors[keep], classes[keep]  # (S', D), (S', )
    has_ref = torch.bincount(
        classes.long(), minlength=num_classes)[:num_classes] > 0  # (C, )
    refinement = class_refinement_maps(vectors, classes, feat, num_classes,
                                       alpha, epsilon, chunk_size)
    return apply_refinement(cam, refinement, has_ref & in_label, bg_score,
                            stride)
