"""Object masks without SAM: a rough hand-drawn polygon refined by a random walker.

ADIW starts from SA-1B's SAM masks (paper §3.1, step 1). SAM's weights cannot be
shipped with a teaching repository's sample data, so ``data_samples/`` is annotated
with a classical, documented stand-in that still yields what an SA-1B annotation
holds — a mask, a soft score map, a stability score and a quality estimate:

1. **Trimap.** A person draws a rough polygon around the object (a few vertices,
   a few pixels off the true outline). Pixels deeper than ``band`` inside it are
   certainly object; pixels farther than ``band`` outside are certainly background;
   the ``2·band`` wide strip between is unknown.
2. **Random walker** (Grady, *Random Walks for Image Segmentation*, PAMI 2006,
   ``skimage.segmentation.random_walker``): each unknown pixel gets the probability
   ``p`` that a walker starting there, and stepping more readily between similar
   colours (edge weight ``exp(-β·|∇I|²)``), reaches an object seed before a
   background seed. The mask is ``p > 0.5``.
3. **Scores, SAM's way.** SAM thresholds mask *logits* at 0 and calls a mask stable
   when thresholds ±1 give nearly the same mask: ``stability = |logit > 1| /
   |logit > -1|``. With ``logit = log(p / (1 - p))`` that is
   ``|p > σ(1)| / |p > σ(-1)|``, computed here from the walker's probabilities.
   SAM's ``predicted_iou`` comes from a learned head we do not have; we report the
   IoU the mask would have if ``p`` were the truth, the soft IoU
   ``Σ min(p, m) / Σ max(p, m)`` — in [0, 1], where SAM's may exceed 1.

The walker runs on a crop around the polygon (its ``crop_box`` is stored, as SAM
stores the crop it predicted in) and the prompt point is the object seed pixel
farthest from the polygon's edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage
from skimage.draw import polygon2mask
from skimage.segmentation import random_walker

UNKNOWN, OBJECT, BACKGROUND = 0, 1, 2


@dataclass
class SegmentResult:
    """A segmented object.

    Attributes:
        mask: ``(H, W)`` bool, ``probability > 0.5``.
        probability: ``(H, W)`` float64 in [0, 1], object probability (0 outside the crop).
        stability_score: SAM's stability at logit offset 1 (see module docstring).
        predicted_iou: soft IoU of ``mask`` with ``probability``.
        point: ``(x, y)`` prompt point, the object seed farthest from the polygon edge.
        crop_box: ``[x, y, w, h]`` of the crop the walker ran on.
    """

    mask: np.ndarray
    probability: np.ndarray
    stability_score: float
    predicted_iou: float
    point: tuple[float, float]
    crop_box: list[float]


def polygon_mask(polygon: Sequence[Sequence[float]], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a polygon given as ``(x, y)`` vertices.

    Args:
        polygon: ``[(x, y), ...]`` in pixel coordinates (x = column, y = row).
        shape: ``(H, W)`` of the mask.

    Returns:
        ``(H, W)`` bool mask of the pixels inside the polygon.
    """
    vertices = np.asarray(polygon, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 2 or len(vertices) < 3:
        raise ValueError(f"polygon must be at least 3 (x, y) vertices, got array of shape {vertices.shape}")
    return polygon2mask(shape, vertices[:, ::-1])  # skimage wants (row, col)


def trimap(rough_mask: np.ndarray, band: int) -> np.ndarray:
    """Seeds for the walker from a rough mask.

    Args:
        rough_mask: ``(H, W)`` bool, the rasterised rough polygon.
        band: half-width in pixels of the unknown strip around its outline.

    Returns:
        ``(H, W)`` uint8: ``OBJECT`` (1) deeper than ``band`` inside, ``BACKGROUND`` (2)
        farther than ``band`` outside, ``UNKNOWN`` (0) between.
    """
    rough_mask = np.asarray(rough_mask, dtype=bool)
    if band < 1:
        raise ValueError(f"band must be at least 1 pixel, got {band}")
    # Euclidean distances: exact discs, unlike repeated 3x3 erosions.
    inside = ndimage.distance_transform_edt(rough_mask)
    outside = ndimage.distance_transform_edt(~rough_mask)
    labels = np.full(rough_mask.shape, UNKNOWN, dtype=np.uint8)
    labels[inside > band] = OBJECT
    labels[outside > band] = BACKGROUND
    return labels


def stability_score(probability: np.ndarray, offset: float = 1.0) -> float:
    """SAM's stability score from probabilities: ``|logit > offset| / |logit > -offset|``.

    Args:
        probability: ``(H, W)`` object probability in [0, 1].
        offset: logit offset (SAM's default 1.0).

    Returns:
        IoU of the high- and low-threshold masks (the high one lies inside the low
        one); 0.0 when even the low one is empty.
    """
    probability = np.asarray(probability, dtype=np.float64)
    high = np.count_nonzero(probability > 1.0 / (1.0 + np.exp(-offset)))
    low = np.count_nonzero(probability > 1.0 / (1.0 + np.exp(offset)))
    return float(high / low) if low else 0.0


def soft_iou(probability: np.ndarray, mask: np.ndarray) -> float:
    """``Σ min(p, m) / Σ max(p, m)``: the IoU of ``mask`` if ``probability`` were the truth.

    Args:
        probability: ``(H, W)`` in [0, 1].
        mask: ``(H, W)`` bool.
    """
    probability = np.asarray(probability, dtype=np.float64)
    mask = np.asarray(mask, dtype=np.float64)
    union = np.maximum(probability, mask).sum()
    return float(np.minimum(probability, mask).sum() / union) if union else 0.0


def segment_from_polygon(
    image: np.ndarray,
    polygon: Sequence[Sequence[float]],
    band: int = 6,
    beta: float = 130.0,
    margin: int = 8,
) -> SegmentResult:
    """Segment one object from a rough polygon (trimap + random walker).

    Args:
        image: ``(H, W, 3)`` uint8 or float RGB, or ``(H, W)`` grey.
        polygon: rough outline, ``[(x, y), ...]``; it may run off the image (clipped).
        band: half-width of the unknown strip, about how far the polygon may be off.
        beta: random-walker edge sensitivity (larger: stops more at colour edges).
        margin: extra background pixels around the crop.

    Returns:
        A :class:`SegmentResult`.

    Raises:
        ValueError: the polygon holds no pixel deeper than ``band`` (too thin for
            this band), or covers no background seed inside the image.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image must be (H, W, 3) or (H, W), got shape {image.shape}")
    height, width = image.shape[:2]
    rough = polygon_mask(polygon, (height, width))
    labels = trimap(rough, band)
    if not (labels == OBJECT).any():
        raise ValueError(f"polygon has no pixel deeper than band={band} inside the image; draw it wider or lower band")
    # Crop to the polygon's neighbourhood: the walker cost grows with the pixel count.
    rows, cols = np.nonzero(labels != BACKGROUND)
    y0, y1 = max(rows.min() - margin, 0), min(rows.max() + margin + 1, height)
    x0, x1 = max(cols.min() - margin, 0), min(cols.max() + margin + 1, width)
    crop_labels = labels[y0:y1, x0:x1]
    if not (crop_labels == BACKGROUND).any():
        raise ValueError("polygon leaves no background seed around it; the walker needs both kinds")
    crop = image[y0:y1, x0:x1].astype(np.float64)
    crop = crop / 255.0 if image.dtype == np.uint8 else crop
    probabilities = random_walker(
        crop,
        crop_labels,
        beta=beta,
        mode="cg_j",
        tol=1e-4,
        channel_axis=-1 if crop.ndim == 3 else None,
        return_full_prob=True,
    )
    probability = np.zeros((height, width), dtype=np.float64)
    # The walker's iterative solver overshoots [0, 1] by up to ~0.5 % on noisy images.
    probability[y0:y1, x0:x1] = np.clip(probabilities[OBJECT - 1], 0.0, 1.0)
    mask = probability > 0.5
    # Prompt point: the seed pixel deepest inside the polygon (first in raster order on ties).
    depth_inside = ndimage.distance_transform_edt(rough)
    row, col = np.unravel_index(np.argmax(depth_inside), depth_inside.shape)
    return SegmentResult(
        mask=mask,
        probability=probability,
        stability_score=stability_score(probability),
        predicted_iou=soft_iou(probability[y0:y1, x0:x1], mask[y0:y1, x0:x1]),
        point=(float(col), float(row)),
        crop_box=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
    )
