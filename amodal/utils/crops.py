"""The object-centred crop: what of a photo the network sees (README, "Whole photo or object-centred crop")."""
from __future__ import annotations

import numpy as np

#: the object-centred crop's margin, a share of the object's box on each side (predict's crop)
CROP_MARGIN = 0.25


def object_crop(mask, margin: float) -> tuple[int, int, int, int]:
    """The object-centred crop ``(top, bottom, left, right)`` (end exclusive) around ``mask``.

    The mask's bounding box, grown by ``margin`` × its larger side on each side and made
    square around its centre, then shifted (not shrunk) to lie inside the photo; where the
    square is larger than the photo's shorter side it is cut there, so the crop is the
    photo's full height or width. The network then sees the object at a size set by the
    object, not by the photo: a small object of a large photo is not squashed to a few
    pixels. :func:`amodal.inference.predict` runs the network on it; the object-centred
    synthetic views (:mod:`amodal.scenes.realism`) render it.

    Args:
        mask: (H, W) bool, numpy or torch (on the CPU), not empty.
        margin: ≥ 0.

    Raises:
        ValueError: an empty mask or a negative margin.
    """
    if margin < 0:
        raise ValueError(f"crop margin must be ≥ 0, got {margin}")
    rows, cols = np.nonzero(np.asarray(mask))
    if rows.size == 0:
        raise ValueError("the amodal mask is empty: nothing to crop around")
    h, w = mask.shape
    box_top, box_bottom, box_left, box_right = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    side = max(box_bottom - box_top, box_right - box_left)
    side = int(round(side * (1 + 2 * margin)))

    def span(start, end, limit):
        length = min(side, limit)
        first = (start + end - length) // 2
        first = min(max(first, 0), limit - length)
        return first, first + length

    top, bottom = span(box_top, box_bottom, h)
    left, right = span(box_left, box_right, w)
    return top, bottom, left, right
