"""The complete-object filter: which SAM masks show a whole object (paper §3.1, step 2).

ADIW pastes an occluder over a *complete* object, so that the object's full shape —
its amodal mask — is known before it is hidden. The paper takes pix2gestalt's
heuristic ("an object nearer than everything around its outline"), whose thresholds
were never published. Ours are below, each a field of :class:`ObjectFilter`, tested
one by one, and every rejection says which test failed:

============================  ===================================================
``min_predicted_iou``         SAM's own quality estimate (``predicted_iou``) ≥ 0.80
``min_stability_score``       mask stable under threshold changes ≥ 0.80
``min_area_fraction``         mask area ≥ 0.5 % of the image (tiny masks are noise
                              and leave nothing to hide)
``max_area_fraction``         mask area ≤ 40 % (stuff like sky, walls, floors)
``border_margin``             no mask pixel within 2 px of the image border: a
                              mask the frame cuts off is not complete
single component              one 8-connected region (two pieces mean the object
                              is already occluded or the mask is two things)
``min_solidity``              area / convex-hull area ≥ 0.75: deep concavities are
                              often occlusion bites, not shape
ring test (with depth)        the object is in front of its surroundings: of the
                              pixels in a ring of width ``ring_width`` outside the
                              outline, at least ``min_ring_behind_fraction`` (50 %)
                              have disparity below the median of the band just
                              inside the outline minus ``ring_depth_margin`` (0.01)
============================  ===================================================

The ring width is ``max(ring_min_width, ring_width_fraction · sqrt(area))`` pixels,
so that it scales with the object. Depth is normalised disparity (larger = nearer).
Tests are run cheapest first; the first that fails is the reason.

The quality floors are lenient on purpose: SA-1B's masks (and SAM's automatic
generator, :mod:`amodal.adiw.sam_masks`) already passed ``predicted_iou ≥ 0.88`` and
``stability_score ≥ 0.95``; the floors here catch masks from other segmenters, such
as the classical ones of ``data_samples/``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

REASONS = (
    "low_predicted_iou",
    "low_stability_score",
    "too_small",
    "too_large",
    "touches_border",
    "fragmented",
    "not_solid",
    "not_in_front",
)


@dataclass(frozen=True)
class ObjectFilter:
    """Thresholds of the complete-object filter (see the module docstring)."""

    min_predicted_iou: float = 0.80
    min_stability_score: float = 0.80
    min_area_fraction: float = 0.005
    max_area_fraction: float = 0.40
    border_margin: int = 2
    min_solidity: float = 0.75
    ring_min_width: int = 3
    ring_width_fraction: float = 0.05
    ring_depth_margin: float = 0.01
    min_ring_behind_fraction: float = 0.50


@dataclass
class CompleteObject:
    """A mask that passed the filter.

    Attributes:
        index: position in the input list.
        annotation_id: the SA-1B ``id`` (``None`` when the input had no annotation).
        mask: ``(H, W)`` bool.
        bbox: ``(row0, row1, col0, col1)``, end exclusive.
        area: pixels in the mask.
        solidity: area / convex-hull area.
        ring_behind: fraction of ring pixels behind the object (NaN without depth).
    """

    index: int
    annotation_id: int | None
    mask: np.ndarray = field(repr=False)
    bbox: tuple[int, int, int, int]
    area: int
    solidity: float
    ring_behind: float = math.nan


@dataclass
class Rejection:
    """A mask that failed: ``reason`` is one of :data:`REASONS`, ``detail`` the numbers."""

    index: int
    annotation_id: int | None
    reason: str
    detail: str


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` of a non-empty mask, end exclusive."""
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    return int(rows[0]), int(rows[-1] + 1), int(cols[0]), int(cols[-1] + 1)


def solidity(mask: np.ndarray) -> float:
    """Mask area divided by the area of its convex hull (1 for a convex shape).

    The hull is rasterised by ``skimage.morphology.convex_hull_image`` on the mask's box.
    """

    r0, r1, c0, c1 = mask_box(mask)
    crop = mask[r0:r1, c0:c1]
    hull = convex_hull_image(crop)
    return float(crop.sum() / max(hull.sum(), 1))


def ring_width(area: int, config: ObjectFilter = ObjectFilter()) -> int:
    """Width in pixels of the rings used by the depth test for a mask of ``area`` pixels."""
    return max(config.ring_min_width, int(round(config.ring_width_fraction * math.sqrt(area))))


def ring_behind_fraction(mask: np.ndarray, depth: np.ndarray, width: int, margin: float) -> float:
    """Fraction of the outer ring's pixels that lie behind the object's edge.

    Args:
        mask: ``(H, W)`` bool.
        depth: ``(H, W)`` normalised disparity (larger = nearer).
        width: ring width in pixels (both the band inside and the ring outside).
        margin: a ring pixel counts as behind when its disparity is below the median
            disparity of the inner band minus ``margin``.

    Returns:
        A fraction in [0, 1]; NaN when the outer ring is empty (mask fills the image).
    """
    structure = ndimage.generate_binary_structure(2, 1)
    outer = ndimage.binary_dilation(mask, structure, iterations=width) & ~mask
    inner = mask & ~ndimage.binary_erosion(mask, structure, iterations=width, border_value=1)
    if not outer.any():
        return math.nan
    edge = float(np.median(depth[inner])) if inner.any() else float(np.median(depth[mask]))
    return float(np.mean(depth[outer] < edge - margin))


def _crop_with_margin(mask, depth, pad):
    r0, r1, c0, c1 = mask_box(mask)
    r0, c0 = max(r0 - pad, 0), max(c0 - pad, 0)
    r1, c1 = min(r1 + pad, mask.shape[0]), min(c1 + pad, mask.shape[1])
    return mask[r0:r1, c0:c1], depth[r0:r1, c0:c1]


def check_object(
    mask: np.ndarray,
    annotation: dict | None = None,
    depth: np.ndarray | None = None,
    config: ObjectFilter = ObjectFilter(),
) -> tuple[str | None, str, dict]:
    """Run the filter's tests on one mask.

    Args:
        mask: ``(H, W)`` bool.
        annotation: its SA-1B annotation (``predicted_iou``, ``stability_score`` are
            tested when present).
        depth: ``(H, W)`` normalised disparity of the image, or ``None`` to skip the ring test.
        config: thresholds.

    Returns:
        ``(reason, detail, measures)``: ``reason`` is ``None`` when the mask passes;
        ``measures`` holds ``area``, ``solidity`` and ``ring_behind`` as far as computed.
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if depth is not None and np.shape(depth) != mask.shape:
        raise ValueError(f"depth has shape {np.shape(depth)}, mask has {mask.shape}")
    annotation = annotation or {}
    measures: dict = {}
    iou = annotation.get("predicted_iou")
    if iou is not None and iou < config.min_predicted_iou:
        return "low_predicted_iou", f"predicted_iou {iou:.3f} < {config.min_predicted_iou}", measures
    stability = annotation.get("stability_score")
    if stability is not None and stability < config.min_stability_score:
        return "low_stability_score", f"stability_score {stability:.3f} < {config.min_stability_score}", measures
    area = int(mask.sum())
    measures["area"] = area
    fraction = area / mask.size
    if fraction < config.min_area_fraction:
        return "too_small", f"area {fraction:.4f} of the image < {config.min_area_fraction}", measures
    if fraction > config.max_area_fraction:
        return "too_large", f"area {fraction:.4f} of the image > {config.max_area_fraction}", measures
    m = config.border_margin
    r0, r1, c0, c1 = mask_box(mask)
    if r0 < m or c0 < m or r1 > mask.shape[0] - m or c1 > mask.shape[1] - m:
        return "touches_border", f"mask box rows {r0}:{r1}, cols {c0}:{c1} within {m} px of the border", measures
    _, components = ndimage.label(mask[r0:r1, c0:c1], structure=np.ones((3, 3)))
    if components != 1:
        return "fragmented", f"{components} connected components", measures
    measures["solidity"] = solid = solidity(mask)
    if solid < config.min_solidity:
        return "not_solid", f"solidity {solid:.3f} < {config.min_solidity}", measures
    if depth is not None:
        width = ring_width(area, config)
        crop_mask, crop_depth = _crop_with_margin(mask, np.asarray(depth, np.float64), width + 1)
        measures["ring_behind"] = behind = ring_behind_fraction(crop_mask, crop_depth, width, config.ring_depth_margin)
        if not behind >= config.min_ring_behind_fraction:
            return (
                "not_in_front",
                f"{behind:.2f} of the ring is behind the object < {config.min_ring_behind_fraction}",
                measures,
            )
    return None, "", measures


def select_complete_objects(
    objects: Iterable[tuple[dict | None, np.ndarray]] | Sequence[np.ndarray],
    depth: np.ndarray | None = None,
    config: ObjectFilter = ObjectFilter(),
) -> tuple[list[CompleteObject], list[Rejection]]:
    """Split masks into complete objects and rejections.

    Args:
        objects: ``(annotation, mask)`` pairs, as :func:`amodal.adiw.sa1b.load_masks` returns,
            or bare ``(H, W)`` masks.
        depth: ``(H, W)`` normalised disparity of the image (enables the ring test).
        config: thresholds.

    Returns:
        ``(kept, rejected)``: every input appears in exactly one of the two lists, in
        input order.
    """
    kept: list[CompleteObject] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(objects):
        annotation, mask = item if isinstance(item, tuple) else (None, item)
        mask = np.asarray(mask, bool)
        ident = annotation.get("id") if annotation else None
        if not mask.any():
            rejected.append(Rejection(index, ident, "too_small", "empty mask"))
            continue
        reason, detail, measures = check_object(mask, annotation, depth, config)
        if reason is None:
            kept.append(
                CompleteObject(
                    index, ident, mask, mask_box(mask), measures["area"], measures["solidity"],
                    measures.get("ring_behind", math.nan),
                )
            )
        else:
            rejected.append(Rejection(index, ident, reason, detail))
    return kept, rejected
