"""Amodal depth for your own photo, step by step and free of widgets (notebook 07; wiring in :mod:`amodal.app.widgets`).

1. **The photo**: a file, an upload's bytes or one of ``data_samples/images``, scaled so that
   its longer side is at most ``max_side`` (the network sees a 518² square anyway).
2. **The visible mask** ``M_vis`` from clicks. With SAM (a checkpoint given) the clicks are
   its positive point prompts and the best of its three masks by predicted IoU is kept.
   Without SAM the clicks are the corners of a rough polygon around the visible part,
   refined by the random walker of :mod:`amodal.app.segment_classical` (the method that
   annotated ``data_samples/``). It needs three clicks; the walker decides a strip on
   both sides of the polygon's outline, 15 % of the polygon's smaller side wide each way,
   so the corners may be that far off the true outline.
3. **The amodal mask** ``M_a``, drawn with a :class:`Brush`: pointer press, move and release
   paint the stroke's capsule (every pixel within ``radius`` of the pointer's path);
   erasing clears it. A starting guess is the **convex hull** of ``M_vis``
   (:func:`amodal.models.mask_completer.convex_hull_completion`), the smallest convex region
   that holds what is seen.
   It is the whole object when the object is convex and the occluder hides only parts
   inside that hull (a ball behind a post); it undershoots where the hidden part sticks
   out of it (the far end of a bar behind a box), and there the brush adds
   the rest. The other guess is the **mask completer**
   (:func:`amodal.app.amodal_masks.complete_amodal_mask`, :meth:`PhotoSession.complete_with_completer`),
   a tiny network trained on synthetic occlusions that also reads the photo, and guesses
   past the hull. ``M_a`` always includes ``M_vis``.
4. **Depth**: ``D_o`` from the base depth (a Depth Anything V2, any ``DepthEstimator``, a
   map, or the toy row prior when no weights are at hand), then :func:`amodal.inference.predict`
   (at the side the network was trained at): the amodal network inside ``M_a``, ``D_o``
   outside, the 3×3 mean over the seam.
5. **Export**: the object's points as PLY (:mod:`amodal.export`).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.measure import find_contours

from amodal.adiw.depth import load_estimator, normalise_disparity
from amodal.adiw.sam_masks import sam_generator
from amodal.app.amodal_masks import complete_amodal_mask
from amodal.app.segment_classical import segment_from_polygon
from amodal.export import point_cloud, write_ply
from amodal.inference import predict
from amodal.models.mask_completer import convex_hull_completion
from amodal.utils.images import read_image

BAND_FRACTION = 0.15  # the walker's unknown strip, each side of the rough polygon, per polygon side


class Brush:
    """A mask painted by pointer events, in pixel coordinates (x = column, y = row; pixel centres at integers).

    ``press`` starts a stroke, each ``move`` paints the segment from the previous pointer
    position (every pixel whose centre lies within ``radius`` of it), ``release`` ends the
    stroke. A ``move`` with no stroke going (the pointer passing over) paints nothing.

    Args:
        shape: (H, W) of the mask.
        radius: in pixels.
    """

    def __init__(self, shape: tuple[int, int], radius: float = 6.0):
        self.mask = np.zeros(shape, bool)
        self.radius = float(radius)
        self.erase = False
        self.strokes = 0
        self._last: tuple[float, float] | None = None

    @property
    def drawing(self) -> bool:
        return self._last is not None

    def press(self, x: float, y: float) -> None:
        self._last = (float(x), float(y))
        self._paint(self._last, self._last)

    def move(self, x: float, y: float) -> None:
        if self._last is None:
            return
        point = (float(x), float(y))
        self._paint(self._last, point)
        self._last = point

    def release(self) -> None:
        if self._last is not None:
            self.strokes += 1
        self._last = None

    def _paint(self, start, end) -> None:
        (x0, y0), (x1, y1), r = start, end, self.radius
        h, w = self.mask.shape
        # only the bounding box of the capsule can change
        top, bottom = max(int(math.floor(min(y0, y1) - r)), 0), min(int(math.ceil(max(y0, y1) + r)), h - 1)
        left, right = max(int(math.floor(min(x0, x1) - r)), 0), min(int(math.ceil(max(x0, x1) + r)), w - 1)
        if top > bottom or left > right:
            return
        rows, cols = np.mgrid[top:bottom + 1, left:right + 1].astype(np.float64)
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        # the closest point of the segment to each pixel centre
        t = np.zeros_like(rows) if length2 == 0 else np.clip(((cols - x0) * dx + (rows - y0) * dy) / length2, 0, 1)
        inside = (cols - x0 - t * dx) ** 2 + (rows - y0 - t * dy) ** 2 <= r * r + 1e-9
        self.mask[top:bottom + 1, left:right + 1][inside] = not self.erase


def outline_clicks(mask: np.ndarray, count: int = 10, margin: float = 0.08) -> list[tuple[float, float]]:
    """The clicks a person would make around an object, for demos and tests: ``count`` points
    evenly spaced along the outline of ``mask``, each pushed away from its centroid by
    ``margin`` of the object's size (so the polygon they make holds the object with room to spare)."""

    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("outline_clicks needs a non-empty mask")
    contour = max(find_contours(np.pad(mask, 1).astype(float), 0.5), key=len) - 1  # (N, 2) rows, cols
    steps = np.linalg.norm(np.diff(contour, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    points = np.stack([np.interp(np.linspace(0, arc[-1], count, endpoint=False), arc, contour[:, k]) for k in (0, 1)], 1)
    rows, cols = np.nonzero(mask)
    centre = np.array([rows.mean(), cols.mean()])
    size = max(np.ptp(rows), np.ptp(cols)) + 1
    away = points - centre
    points = points + margin * size * away / np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-9)
    return [(float(c), float(r)) for r, c in points]


def read_photo(photo, max_side: int | None = 384) -> np.ndarray:
    """A photo (path, bytes or array) as (H, W, 3) uint8 RGB, the longer side at most ``max_side``.

    Files and bytes are read by :func:`amodal.utils.images.read_image`: upright by their
    EXIF orientation (so the clicks land where the photo is shown), 16-bit scaled, and
    refused with one clear error when broken or over its pixel limit.
    """

    if isinstance(photo, (str, os.PathLike)):
        if not Path(photo).is_file():
            raise FileNotFoundError(f"photo not found: {photo}")
        picture = Image.fromarray(read_image(photo))
    elif isinstance(photo, (bytes, bytearray, memoryview)):
        picture = Image.fromarray(read_image(photo))
    else:
        array = np.asarray(photo)
        if array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"photo must be (H, W, 3), got {array.shape}")
        picture = Image.fromarray(array if array.dtype == np.uint8 else np.rint(np.clip(array, 0, 1) * 255).astype(np.uint8))
    if max_side is not None and max(picture.size) > max_side:
        scale = max_side / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), Image.BILINEAR)
    return np.asarray(picture)


def load_sam(checkpoint: str | os.PathLike, model_type: str = "vit_h", device: str = "cpu"):
    """SAM's point-prompt predictor (``segment_anything.SamPredictor``) for a checkpoint: a path,
    or a hub id (``ybelkada/segment-anything`` reads the official file of ``model_type``)."""

    return sam_generator(checkpoint, model_type, device).predictor


def sam_point_mask(predictor, image: np.ndarray, points) -> np.ndarray:
    """SAM's mask for positive ``points`` [(x, y), ...] on ``image``: the best of three by predicted IoU."""
    if getattr(predictor, "_amodal_image", None) is not image:
        predictor.set_image(image)
        predictor._amodal_image = image
    coords = np.asarray(points, np.float32).reshape(-1, 2)
    masks, scores, _ = predictor.predict(point_coords=coords, point_labels=np.ones(len(coords)), multimask_output=True)
    return np.asarray(masks[int(np.argmax(scores))], bool)


def observed_depth_of(base, image: np.ndarray) -> np.ndarray:
    """``D_o`` (H, W) in [0, 1] of ``image`` from ``base``: a Depth Anything V2 (``infer_image``),
    a ``DepthEstimator`` (``predict``), a spec of :func:`amodal.adiw.depth.load_estimator` such as
    ``"row-prior"``, or an (H, W) map itself."""

    if isinstance(base, str):
        base = load_estimator(base)
    if hasattr(base, "infer_image"):
        return normalise_disparity(base.infer_image(image)).astype(np.float32)
    if hasattr(base, "predict"):
        return np.asarray(base.predict([image])[0], np.float32)
    depth = np.asarray(base, np.float32)
    if depth.shape != image.shape[:2]:
        raise ValueError(f"observed depth must be (H, W) = {image.shape[:2]} like the photo, got {depth.shape}")
    return depth


class PhotoSession:
    """One photo on its way to amodal depth (the steps of the module docstring).

    Args:
        image: (H, W, 3) uint8 RGB (see :func:`read_photo`).
        model: an Amodal-DAV2 (anything with its call signature), or ``None`` until one is set.
        base: where ``D_o`` comes from (see :func:`observed_depth_of`).
        sam: a ``SamPredictor`` (:func:`load_sam`), or ``None`` for the classical fallback.
        brush_radius: in pixels (default: 2 % of the longer side, at least 2).
        completer: the :class:`~amodal.models.mask_completer.MaskCompleter` of
            :meth:`complete_with_completer` (``None``: the shipped one, loaded on first use).
    """

    def __init__(self, image: np.ndarray, model=None, base="row-prior", sam=None, brush_radius: float | None = None,
                 completer=None):
        self.image = read_photo(image, max_side=None)
        self.model, self.base, self.sam, self.completer = model, base, sam, completer
        self.clicks: list[tuple[float, float]] = []
        self.visible_mask = np.zeros(self.image.shape[:2], bool)
        self.brush = Brush(self.image.shape[:2], brush_radius or max(2.0, 0.02 * max(self.image.shape[:2])))
        self.depth: np.ndarray | None = None
        self.message = ""
        self._observed: np.ndarray | None = None

    @classmethod
    def from_photo(cls, photo, max_side: int | None = 384, **options) -> "PhotoSession":
        """A session on a photo file, an upload's bytes or an array (see :func:`read_photo`)."""
        return cls(read_photo(photo, max_side), **options)

    @property
    def amodal_mask(self) -> np.ndarray:
        """``M_a``: what the brush painted, together with ``M_vis``."""
        return self.brush.mask | self.visible_mask

    @property
    def hidden_mask(self) -> np.ndarray:
        return self.amodal_mask & ~self.visible_mask

    def click(self, x: float, y: float) -> np.ndarray:
        """Add a click on the visible part and segment again; returns ``M_vis``."""
        self.clicks.append((float(x), float(y)))
        return self.segment()

    def clear_clicks(self) -> None:
        self.clicks.clear()
        self.visible_mask = np.zeros_like(self.visible_mask)

    def segment(self) -> np.ndarray:
        """``M_vis`` from the clicks (SAM, or the classical polygon fallback); ``message`` says what happened."""
        if self.sam is not None and self.clicks:
            self.visible_mask = sam_point_mask(self.sam, self.image, self.clicks)
            self.message = f"SAM: {self.visible_mask.sum()} visible pixels from {len(self.clicks)} click(s)"
        elif len(self.clicks) < 3:
            self.message = f"{len(self.clicks)} corner(s) of a rough polygon around the visible part; click {3 - len(self.clicks)} more"
        else:
            corners = np.asarray(self.clicks)
            band = max(3, round(BAND_FRACTION * float(np.min(corners.max(0) - corners.min(0)))))
            try:
                self.visible_mask = segment_from_polygon(self.image, self.clicks, band=band).mask
                self.message = f"random walker: {self.visible_mask.sum()} visible pixels from a {len(self.clicks)}-corner polygon"
            except ValueError as error:
                self.message = f"no mask yet: {error}"
        return self.visible_mask

    def complete_hull(self) -> np.ndarray:
        """Add the convex hull of ``M_vis`` to the painted mask; returns ``M_a``."""
        self.brush.mask |= convex_hull_completion(self.visible_mask)
        return self.amodal_mask

    def complete_with_completer(self) -> np.ndarray:
        """Add the mask completer's ``M_a`` (``self.completer``, or the shipped one) to the painted mask; returns ``M_a``."""
        self.brush.mask |= complete_amodal_mask(self.image, self.visible_mask, self.completer)
        return self.amodal_mask

    def clear_amodal(self) -> None:
        self.brush.mask[:] = False

    @property
    def observed_depth(self) -> np.ndarray:
        """``D_o`` of the photo (computed once)."""
        if self._observed is None:
            self._observed = observed_depth_of(self.base, self.image)
        return self._observed

    def run(self) -> np.ndarray:
        """Amodal depth of the photo (H, W): the network inside ``M_a``, ``D_o`` outside, the seam blended.

        Raises:
            ValueError: no model, or an empty amodal mask.
        """

        if self.model is None:
            raise ValueError("no Amodal-DAV2 model: pass model= (a network or a checkpoint path)")
        if not self.amodal_mask.any():
            raise ValueError("the amodal mask is empty: click the visible part, then paint or use the convex hull")
        # M_vis goes along: a fill_residual network corrects a fill from the visible part
        self.depth = predict(self.image, self.amodal_mask, self.model, observed_depth=self.observed_depth,
                             visible_mask=self.visible_mask)
        self.message = f"amodal depth of {self.amodal_mask.sum()} object pixels ({self.hidden_mask.sum()} hidden)"
        return self.depth

    def export_ply(self, path: str | os.PathLike) -> Path:
        """Write the object's points, coloured from the photo, as ASCII PLY (:func:`amodal.export.write_ply`)."""

        if self.depth is None:
            raise ValueError("run the model first (PhotoSession.run)")
        return write_ply(path, *point_cloud(self.depth, self.amodal_mask, self.image))
