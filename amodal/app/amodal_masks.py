"""The amodal mask from a completion: the official demo's two ways, and what they share.

In the official in-the-wild demo (the authors' ``app.py``) the user's brush strokes on the
visible part become SAM point prompts (:func:`stroke_points`: the centroid of a stroke
under 100 px, else a grid every 10 px inside it), SAM gives the visible mask, pix2gestalt
paints the whole object at 256² (:mod:`amodal.models.pix2gestalt`), and the amodal mask is
cut from that painting, one of two ways:

- **SAM on the painting** (:func:`union_of_masks_with_points`): SAM's automatic masks of the
  painting, every one that holds at least one prompt point, united.
- **Background removal** of the painting: the demo runs the RMBG-1.4 matting model. Without
  its weights, :func:`painting_foreground` is a classical fallback: pix2gestalt paints the
  object on a plain background, so the pixels far (in colour) from the painting's border
  colour are the object.

Both are then cleaned (:func:`clean_mask`): holes filled (an object has none in its outline)
and islands smaller than a share of the largest piece dropped (specks of the background).
Ours, not the demo's: the result always includes ``M_vis`` — what is seen of the object is
certainly part of it — so a completion that misses the visible part cannot shrink the object.

Without pix2gestalt's weights, two offline proposals of ``M_a`` from the photo and ``M_vis``
(:func:`propose_amodal_mask`): the **convex hull** of ``M_vis``, and the **completer**
(:func:`complete_amodal_mask`), our tiny U-Net trained on synthetic occlusions
(:mod:`amodal.models.mask_completer`, shipped in ``checkpoints/amodal-mask-completer-tiny``),
which beats the hull on hidden-part IoU on held-out synthetic scenes, and on real photos
with pasted occluders in the hard bucket only (README, "The tiny amodal-mask completer").
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
from scipy.ndimage import binary_fill_holes, label

from amodal.models.mask_completer import MaskCompleter, complete_mask, convex_hull_completion
from amodal.utils.paths import checkpoints_dir

SMALL_STROKE = 100  # official: a stroke under 100 px gives its centroid, a larger one a grid
GRID_STEP = 10      # official: grid points every 10 px inside a larger stroke
SHIPPED_COMPLETER = "amodal-mask-completer-tiny"  # the folder of checkpoints/ the completer loads by default
PROPOSALS = ("hull", "completer")                 # the offline proposals of M_a (propose_amodal_mask)


def stroke_points(strokes: np.ndarray, small: int = SMALL_STROKE, step: int = GRID_STEP) -> np.ndarray:
    """SAM point prompts from painted strokes, as the official demo makes them.

    Each 8-connected component of ``strokes`` gives its centroid (rounded down) when it has
    fewer than ``small`` pixels, else every pixel of the grid ``(x, y) = (i·step, j·step)``
    that falls inside it.

    Args:
        strokes: (H, W) bool, the painted pixels.

    Returns:
        (N, 2) int ``(x, y)`` points (x = column), components in label order.

    Raises:
        ValueError: no stroke at all.
    """
    strokes = np.asarray(strokes, bool)
    if not strokes.any():
        raise ValueError("no stroke: paint on the visible part of the object, or give points")
    components, count = label(strokes, structure=np.ones((3, 3)))
    points = []
    for k in range(1, count + 1):
        rows, cols = np.nonzero(components == k)
        if rows.size < small:
            points.append((int(cols.mean()), int(rows.mean())))
            continue
        inside = components == k
        for y in range(0, strokes.shape[0], step):
            for x in range(0, strokes.shape[1], step):
                if inside[y, x]:
                    points.append((x, y))
    return np.asarray(points, np.int64).reshape(-1, 2)


def union_of_masks_with_points(masks: Iterable[np.ndarray], points: Sequence) -> np.ndarray | None:
    """The union of the ``masks`` that hold at least one of ``points`` (the official SAM way).

    Args:
        masks: (H, W) bool masks (SAM's automatic masks of the painting).
        points: ``(x, y)`` points in the masks' pixel grid.

    Returns:
        (H, W) bool, or ``None`` when no mask holds a point.
    """
    points = np.asarray(points, np.int64).reshape(-1, 2)
    union = None
    for mask in masks:
        mask = np.asarray(mask, bool)
        inside = (points[:, 0] >= 0) & (points[:, 0] < mask.shape[1]) & (points[:, 1] >= 0) & (points[:, 1] < mask.shape[0])
        if inside.any() and mask[points[inside, 1], points[inside, 0]].any():
            union = mask.copy() if union is None else union | mask
    return union


def clean_mask(mask: np.ndarray, smallest: float = 0.05) -> np.ndarray:
    """``mask`` with its holes filled and the pieces smaller than ``smallest`` × the largest dropped.

    Args:
        mask: (H, W) bool.
        smallest: pieces (4-connected) below this share of the largest piece's area go.

    Returns:
        (H, W) bool; all-False stays all-False.
    """
    mask = binary_fill_holes(np.asarray(mask, bool))
    components, count = label(mask)
    if count <= 1:
        return mask
    areas = np.bincount(components.ravel())[1:]
    keep = np.flatnonzero(areas >= smallest * areas.max()) + 1
    return np.isin(components, keep)


def painting_foreground(painting: np.ndarray, threshold: float = 0.12) -> np.ndarray:
    """The painted object of a completion, by its difference from the background colour.

    The background colour is the median of the painting's one-pixel border (pix2gestalt
    paints the whole object on a plain background, away from the edges); a pixel is object
    where its colour is farther than ``threshold`` (Euclidean, RGB in [0, 1], about 20 grey
    levels per channel) from it.

    Args:
        painting: (H, W, 3) uint8, or float in [0, 1].

    Returns:
        (H, W) bool, before :func:`clean_mask`.
    """
    image = np.asarray(painting)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"painting must be (H, W, 3), got {image.shape}")
    image = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    background = np.median(border, axis=0)
    return np.linalg.norm(image - background, axis=-1) > threshold


def amodal_mask_from_painting(painting: np.ndarray, visible_mask: np.ndarray, points=None, sam_masks=None,
                              smallest: float = 0.05) -> np.ndarray:
    """The amodal mask ``M_a`` cut from a completion (module docstring), with ``M_vis`` in it.

    Args:
        painting: (H, W, 3) the completion, at the visible mask's size.
        visible_mask: (H, W) bool ``M_vis``.
        points: the prompt points ``(x, y)``; with ``sam_masks``, the SAM way.
        sam_masks: SAM's automatic masks of the painting; ``None``: background removal.
        smallest: see :func:`clean_mask`.

    Returns:
        (H, W) bool ``M_a ⊇ M_vis``.

    Raises:
        ValueError: sizes that differ, or an empty ``M_vis``.
    """
    visible = np.asarray(visible_mask, bool)
    if np.shape(painting)[:2] != visible.shape:
        raise ValueError(f"painting {np.shape(painting)[:2]} and visible mask {visible.shape} differ in size")
    if not visible.any():
        raise ValueError("the visible mask is empty: there is no object to complete")
    if sam_masks is not None:
        if points is None:
            raise ValueError("the SAM way needs the prompt points")
        found = union_of_masks_with_points(sam_masks, points)
        mask = found if found is not None else np.zeros_like(visible)
    else:
        mask = painting_foreground(painting)
    return clean_mask(mask | visible, smallest) | visible


@lru_cache(maxsize=1)
def shipped_completer() -> MaskCompleter:
    """The shipped mask completer (``checkpoints/amodal-mask-completer-tiny``), loaded once, on the CPU."""
    return MaskCompleter.from_pretrained(checkpoints_dir() / SHIPPED_COMPLETER)


def complete_amodal_mask(image, visible_mask, model: MaskCompleter | None = None) -> np.ndarray:
    """``M_a`` from the photo and ``M_vis`` by a trained mask completer; contains ``M_vis``.

    Args:
        image: (H, W, 3) RGB, uint8 or float in [0, 1] (or a torch (3, H, W)).
        visible_mask: (H, W) bool ``M_vis`` (e.g. from clicks and SAM).
        model: a :class:`~amodal.models.mask_completer.MaskCompleter`; ``None``: the shipped one.

    Returns:
        (H, W) bool ``M_a ⊇ M_vis``.

    Raises:
        ValueError: an empty ``M_vis``, or an image and mask of different sizes.
    """
    return complete_mask(image, visible_mask, shipped_completer() if model is None else model)


def propose_amodal_mask(image, visible_mask, method: str = "completer", model: MaskCompleter | None = None) -> np.ndarray:
    """A starting ``M_a`` for the brush: ``"hull"`` (the convex hull of ``M_vis``) or ``"completer"``.

    Args:
        image: (H, W, 3) RGB (the hull does not read it).
        visible_mask: (H, W) bool ``M_vis``.
        method: one of :data:`PROPOSALS`.
        model: the completer's network (``None``: the shipped one).

    Returns:
        (H, W) bool ``M_a ⊇ M_vis``.
    """
    if method == "hull":
        visible = np.asarray(visible_mask, bool)
        if not visible.any():
            raise ValueError("visible_mask is empty: there is nothing to complete (mark the visible part of the object first)")
        return convex_hull_completion(visible)
    if method == "completer":
        return complete_amodal_mask(image, visible_mask, model)
    raise ValueError(f"method must be one of {PROPOSALS}, got {method!r}")
