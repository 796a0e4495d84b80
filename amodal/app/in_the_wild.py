"""From prompt points on a photo to the hidden object's depth: the official demo's chain, each stage chosen.

:func:`amodal_depth_from_points` runs, in order (the stages of the authors' ``app.py``):

1. **Visible mask** ``M_vis`` from the points (or brush strokes, turned into points as the
   demo does, :func:`amodal.app.amodal_masks.stroke_points`): SAM's point prompts (``sam``:
   a ``SamAutomaticMaskGenerator``, :func:`amodal.adiw.sam_masks.sam_generator`), or, without
   SAM, the points as corners of a rough polygon refined by the random walker
   (:mod:`amodal.app.segment_classical`), or a given mask.
2. **Amodal mask** ``M_a``: ``"pix2gestalt"`` paints the whole object at 256² (the photo
   area-resized to 256², as the demo does) and the mask is cut from the painting
   (:func:`amodal.app.amodal_masks.amodal_mask_from_painting`: SAM's automatic masks of the
   painting that hold a prompt point when ``sam`` is given, else background removal);
   ``"hull"`` the convex hull of ``M_vis``; ``"completer"`` the tiny mask completer
   (:func:`amodal.app.amodal_masks.complete_amodal_mask`, the shipped checkpoint); or a given
   mask. ``M_a ⊇ M_vis`` always.
3. **Base depth** ``D_o`` of the photo (a Depth Anything V2, or the toy row prior, which
   the result labels, :attr:`WildResult.base_note`).
4. **Amodal depth**: Amodal-DAV2 through :func:`amodal.inference.predict` (object-centred
   crop), or an Amodal-DepthFM (the mean of its draws, each aligned to ``D_o`` on ``M_vis``).
5. **Fit and paste**: the network's map is fitted to ``D_o`` by least squares on ``M_vis``
   (scale and shift, :func:`amodal.align.scale_shift`), pasted inside ``M_a`` and its seam
   blended (:func:`amodal.inference.blend_border`), as the demo does. Where the fit is
   undetermined (fewer than two visible pixels, or a prediction constant on them) the
   unfitted map is pasted and :attr:`WildResult.messages` says why.

Every intermediate comes back, with each stage's wall time, so a notebook can show each.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from amodal.adiw.depth import toy_depth_note
from amodal.align import scale_shift
from amodal.app.amodal_masks import amodal_mask_from_painting, complete_amodal_mask, stroke_points
from amodal.app.photo import BAND_FRACTION, convex_hull_completion, observed_depth_of, sam_point_mask
from amodal.app.segment_classical import segment_from_polygon
from amodal.inference import CROP_MARGIN, blend_border, load_base_depth, predict
from amodal.models.depthfm import AmodalDepthFM
from amodal.models.pix2gestalt import paint_photo
from amodal.models.preprocess import resample

AMODAL_SOURCES = ("pix2gestalt", "hull", "completer")


@dataclass
class WildResult:
    """Every stage's output of :func:`amodal_depth_from_points`; maps are at the photo's size (H, W).

    Attributes:
        image: (H, W, 3) uint8 RGB.
        points: (N, 2) the prompt points ``(x, y)``.
        visible_mask: (H, W) bool ``M_vis``.
        completion: (256, 256, 3) uint8 pix2gestalt's painting, or ``None``.
        amodal_mask: (H, W) bool ``M_a``.
        observed_depth: (H, W) float32 ``D_o`` in [0, 1].
        raw_depth: (H, W) float32, the network's map inside ``M_a`` (``D_o`` outside), unfitted.
        fitted_depth: (H, W) float32, ``scale · raw + shift`` inside ``M_a``, unblended.
        depth: (H, W) float32, the result: fitted depth pasted into ``D_o``, seam blended.
        scale, shift: the least-squares fit (NaN where undetermined).
        base_note: set when ``D_o`` came from a toy estimator: show it with every figure.
        seconds: wall time of each stage, by name.
        messages: what happened, for people (an undetermined fit among them).
    """

    image: np.ndarray
    points: np.ndarray
    visible_mask: np.ndarray
    completion: np.ndarray | None
    amodal_mask: np.ndarray
    observed_depth: np.ndarray
    raw_depth: np.ndarray
    fitted_depth: np.ndarray
    depth: np.ndarray
    scale: float
    shift: float
    base_note: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    @property
    def hidden_mask(self) -> np.ndarray:
        """``M_inv = M_a ∧ ¬M_vis``, (H, W) bool."""
        return self.amodal_mask & ~self.visible_mask


class _Clock:
    """Wall time per named stage."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, work, *args, **kwargs):
        start = time.perf_counter()
        result = work(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        return result


def prompt_points(points=None, strokes=None) -> np.ndarray:
    """The prompt points ``(N, 2)`` float ``(x, y)``: given, or from a strokes mask (H, W) as the demo makes them.

    Raises:
        ValueError: neither or both given, or no point at all.
    """
    if (points is None) == (strokes is None):
        raise ValueError("give the prompt points (x, y) or a mask of brush strokes, one of the two")
    found = np.asarray(points, np.float64).reshape(-1, 2) if points is not None else stroke_points(strokes).astype(np.float64)
    if len(found) == 0:
        raise ValueError("no prompt point: click on (or paint over) the visible part of the object")
    return found


def visible_from_points(image: np.ndarray, points: np.ndarray, sam=None) -> tuple[np.ndarray, str]:
    """``M_vis`` (H, W) bool from prompt points, and how it was found.

    With ``sam`` (a generator whose ``.predictor`` takes point prompts) SAM's best mask;
    without, the points are the corners of a polygon around the visible part, refined by the
    random walker (at least 3 points).

    Raises:
        ValueError: too few points for the polygon, or a polygon the walker cannot use.
    """
    if sam is not None:
        mask = sam_point_mask(sam.predictor, image, [tuple(p) for p in points])
        return mask, f"SAM from {len(points)} point(s)"
    if len(points) < 3:
        raise ValueError(f"without SAM the points are the corners of a polygon around the visible part: "
                         f"give at least 3, got {len(points)} (or give a SAM checkpoint)")
    band = max(3, round(BAND_FRACTION * float(np.min(points.max(0) - points.min(0)))))
    mask = segment_from_polygon(image, [tuple(p) for p in points], band=band).mask
    return mask, f"random walker inside a {len(points)}-corner polygon"


def complete_with_pix2gestalt(image: np.ndarray, visible_mask: np.ndarray, points: np.ndarray, pix2gestalt,
                              sam=None, steps: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(painting (256, 256, 3) uint8, M_a (H, W) bool)``: the demo's completion and the mask cut from it.

    The photo and ``M_vis`` go to 256² (:func:`amodal.models.pix2gestalt.paint_photo`); the
    painting's mask (SAM's masks holding a prompt point with ``sam``, else background removal)
    comes back to the photo's size by nearest neighbour, united with ``M_vis``.
    """
    h, w = visible_mask.shape
    painting, small_visible = paint_photo(pix2gestalt, image, visible_mask, steps, seed)
    side = painting.shape[0]
    small_points = points * np.array([side / w, side / h])
    sam_masks = [m["segmentation"] for m in sam.generate(painting)] if sam is not None else None
    small_amodal = amodal_mask_from_painting(painting, small_visible, small_points if sam is not None else None, sam_masks)
    amodal = np.asarray(Image.fromarray(small_amodal.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
    return painting, amodal | visible_mask


def _depthfm_depth(image, amodal_mask, model: AmodalDepthFM, observed, visible, samples: int, steps: int, seed: int,
                   size: int) -> np.ndarray:
    """Amodal-DepthFM's mean of ``samples`` draws at ``size``², each aligned to ``D_o`` on ``M_vis``,
    back at the photo's size; ``D_o`` outside ``M_a``."""
    rgb = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)
    maps = {"image": rgb, "amodal_mask": torch.from_numpy(amodal_mask).float()[None],
            "observed_depth": torch.from_numpy(observed).float()[None],
            "visible_mask": torch.from_numpy(visible).float()[None]}
    square = resample(maps, size, "paper")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    inputs = {k: v[None].to(device) for k, v in square.items()}
    out = model.sample(inputs["image"], amodal_mask=inputs["amodal_mask"], observed_depth=inputs["observed_depth"],
                       visible_mask=inputs["visible_mask"], n=samples, steps=steps, generator=generator)
    mean = torch.nn.functional.interpolate(out.mean.float().cpu(), amodal_mask.shape, mode="bilinear", align_corners=False)
    return np.where(amodal_mask, mean[0, 0].numpy(), observed).astype(np.float32)


def amodal_depth_from_points(image: np.ndarray, model, *, points: Sequence | None = None, strokes: np.ndarray | None = None,
                             visible_mask: np.ndarray | None = None, amodal: str | np.ndarray = "hull", sam=None,
                             pix2gestalt=None, base="row-prior", crop: float | None = CROP_MARGIN,
                             size: int | None = None, samples: int = 4, steps: int = 4, seed: int = 0,
                             pix2gestalt_steps: int | None = None) -> WildResult:
    """The whole chain, from prompt points on a photo to the whole object's depth (module docstring).

    Args:
        image: (H, W, 3) uint8 RGB.
        model: an Amodal-DAV2 (anything :func:`amodal.inference.predict` runs) or an
            :class:`~amodal.models.depthfm.AmodalDepthFM`.
        points: prompt points ``[(x, y), ...]`` on the visible part; or ``strokes``, an
            (H, W) bool mask of brush strokes (points made from it as the demo does).
        visible_mask: a given ``M_vis`` (H, W) bool; skips stage 1 (points are still needed
            for the SAM way of cutting the painting).
        amodal: ``"pix2gestalt"`` (needs ``pix2gestalt``), ``"hull"``, ``"completer"`` (the shipped
            mask completer), or a given (H, W) mask.
        sam: a ``SamAutomaticMaskGenerator``; ``None``: the classical segmenter, and
            background removal for the painting.
        pix2gestalt: a :class:`~amodal.models.pix2gestalt.Pix2Gestalt`.
        base: what gives ``D_o``: a spec of :func:`amodal.inference.load_base_depth` (a Depth
            Anything V2 path or hub id, or ``"row-prior"``), a loaded model or estimator, or an (H, W) map.
        crop, size: the object-centred crop of :func:`amodal.inference.predict` (Amodal-DAV2);
            ``size`` is also the DepthFM side (default: its training side, 32 for the tiny one).
        samples, steps, seed: DepthFM's draws, Euler steps and noise; the seed also seeds pix2gestalt.
        pix2gestalt_steps: its DDIM steps (default the demo's 100).

    Returns:
        :class:`WildResult`.

    Raises:
        ValueError: no points, an empty visible or amodal mask, an unknown amodal source,
            pix2gestalt asked for without a model, sizes that differ.
    """
    clock, messages = _Clock(), []
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    shape = image.shape[:2]
    if visible_mask is None:
        found = prompt_points(points, strokes)
        visible, how = clock("visible mask", visible_from_points, image, found, sam)
        messages.append(f"visible mask: {how}, {int(visible.sum())} pixels")
    else:
        visible = np.asarray(visible_mask, bool)
        found = prompt_points(points, strokes) if points is not None or strokes is not None else np.zeros((0, 2))
        messages.append(f"visible mask: given, {int(visible.sum())} pixels")
    if visible.shape != shape:
        raise ValueError(f"visible mask {visible.shape} and photo {shape} differ in size")
    if not visible.any():
        raise ValueError("the visible mask is empty: click on the visible part of the object")
    completion = None
    if isinstance(amodal, str):
        if amodal == "pix2gestalt":
            if pix2gestalt is None:
                raise ValueError("amodal='pix2gestalt' needs a pix2gestalt model (Pix2Gestalt.from_checkpoint)")
            completion, amodal_mask = clock("amodal mask", complete_with_pix2gestalt, image, visible, found,
                                            pix2gestalt, sam, steps=pix2gestalt_steps, seed=seed)
        elif amodal == "hull":
            amodal_mask = clock("amodal mask", convex_hull_completion, visible)
        elif amodal == "completer":
            amodal_mask = clock("amodal mask", complete_amodal_mask, image, visible)
        else:
            raise ValueError(f"unknown amodal mask source {amodal!r}; use one of {AMODAL_SOURCES} or give a mask")
        messages.append(f"amodal mask: {amodal}, {int(amodal_mask.sum())} pixels")
    else:
        amodal_mask = np.asarray(amodal, bool) | visible
        messages.append(f"amodal mask: given, {int(amodal_mask.sum())} pixels")
    if amodal_mask.shape != shape:
        raise ValueError(f"amodal mask {amodal_mask.shape} and photo {shape} differ in size")
    if isinstance(base, str):
        base = clock("loading base depth", load_base_depth, base)
    observed = clock("base depth", observed_depth_of, base, image)
    note = toy_depth_note(base)
    if note:
        messages.append(note)
    if isinstance(model, AmodalDepthFM):
        side = size or 32
        raw = clock("amodal depth", _depthfm_depth, image, amodal_mask, model, observed, visible, samples, steps, seed, side)
    else:
        raw = clock("amodal depth", predict, image, amodal_mask, model, observed_depth=observed, visible_mask=visible,
                    blend=False, crop=crop, size=size)
    fitted, depth, scale, shift = clock("fit and paste", fit_and_paste, raw, observed, amodal_mask, visible, messages)
    return WildResult(image, found, visible, completion, amodal_mask, observed, raw.astype(np.float32), fitted, depth,
                      scale, shift, note, clock.seconds, messages)


def fit_and_paste(raw: np.ndarray, observed: np.ndarray, amodal_mask: np.ndarray, visible_mask: np.ndarray,
                  messages: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The demo's last step: ``raw`` fitted to ``D_o`` on ``M_vis``, pasted inside ``M_a``, seam blended.

    Args:
        raw, observed: (H, W) float, the network's map and ``D_o``.
        amodal_mask, visible_mask: (H, W) bool.
        messages: where an undetermined fit is reported (the unfitted map is pasted then).

    Returns:
        ``(fitted (H, W) float32 unblended, depth (H, W) float32, scale, shift)``.
    """
    raw = np.asarray(raw, np.float64)
    fit_mask = np.asarray(visible_mask, bool) & np.asarray(amodal_mask, bool)
    scale, shift = scale_shift(raw, observed.astype(np.float64), fit_mask, check=False)
    if not (np.isfinite(scale) and np.isfinite(shift)):
        reason = (f"only {int(fit_mask.sum())} visible pixel(s)" if fit_mask.sum() < 2
                  else "the prediction is constant on the visible part")
        if messages is not None:
            messages.append(f"fit to D_o undetermined ({reason}): the network's map is pasted unfitted")
        fitted = raw
    else:
        fitted = scale * raw + shift
        if messages is not None:
            messages.append(f"fitted to D_o on {int(fit_mask.sum())} visible pixels: scale {scale:.3f}, shift {shift:+.3f}")
    mask = torch.from_numpy(np.asarray(amodal_mask, bool))
    pasted = np.where(amodal_mask, fitted, observed).astype(np.float32)
    depth = blend_border(torch.from_numpy(observed.astype(np.float32)), torch.from_numpy(pasted), mask).numpy()
    return pasted, depth, float(scale), float(shift)
