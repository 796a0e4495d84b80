"""Inpaint, then estimate depth: the cascade the paper compares with (Table 1, pix2gestalt‡).

The cascade never sees ``D_o`` as an input. It

1. paints the whole object alone (the hidden part completed, everything else white), as
   pix2gestalt does: with pix2gestalt itself (:func:`amodal.models.pix2gestalt.paint_photo`,
   at 256² and back), or, without weights, :func:`paint_biharmonic`, a classical inpainter
   that continues the visible object's colours into the hidden part;
2. runs a plain relative-depth model (Depth Anything V2) on the painting;
3. fits that depth to ``D_o`` by least-squares scale and shift on the visible part ``M_vis``
   (:func:`amodal.align.align`) and keeps it inside ``M_a``, ``D_o`` outside.

The score is then taken on the hidden region like every other predictor's. Where the fit is
undetermined (fewer than two visible pixels, a depth constant on them) the item's prediction
inside ``M_a`` is NaN, which the scoring counts as undetermined.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.restoration import inpaint_biharmonic

from amodal.adiw.depth import normalise_disparity
from amodal.align import align
from amodal.evaluation.predictors import Predictor, item_map
from amodal.models.pix2gestalt import paint_photo

PAINTERS = ("biharmonic", "pix2gestalt")
BACKGROUND = 1.0  # pix2gestalt paints the object on white


def paint_biharmonic(image: np.ndarray, visible_mask: np.ndarray, amodal_mask: np.ndarray) -> np.ndarray:
    """The object alone: visible pixels kept, the hidden part ``M_a ∧ ¬M_vis`` filled by biharmonic
    inpainting, white outside ``M_a``.

    Args:
        image: (H, W, 3) float in [0, 1].
        visible_mask, amodal_mask: (H, W) bool.

    Returns:
        (H, W, 3) float in [0, 1].
    """
    visible = np.asarray(visible_mask, bool)
    amodal = np.asarray(amodal_mask, bool) | visible
    alone = np.where(visible[..., None], image, BACKGROUND)
    hidden = amodal & ~visible
    if not hidden.any():
        return alone
    # the hidden part is filled from what borders it: the visible object and the white background
    return np.clip(inpaint_biharmonic(alone, hidden, channel_axis=-1), 0, 1)


def _as_uint8(image: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


def cascade_predictor(depth_model, painter: str = "biharmonic", pix2gestalt=None, steps: int | None = None,
                      seed: int = 0) -> Predictor:
    """The cascade (module docstring) as a predictor.

    Args:
        depth_model: a plain relative-depth model with ``infer_image(rgb uint8) -> (H, W)``
            disparity (:class:`~amodal.models.amodal_dav2.DepthAnythingV2`).
        painter: ``"biharmonic"`` or ``"pix2gestalt"`` (needs ``pix2gestalt``).
        pix2gestalt: a :class:`~amodal.models.pix2gestalt.Pix2Gestalt`.
        steps, seed: pix2gestalt's DDIM steps (default 100) and noise.

    Raises:
        ValueError: an unknown painter, or pix2gestalt without its model.
    """
    if painter not in PAINTERS:
        raise ValueError(f"unknown inpainter {painter!r}; use one of {', '.join(PAINTERS)}")
    if painter == "pix2gestalt" and pix2gestalt is None:
        raise ValueError("the pix2gestalt cascade needs pix2gestalt's checkpoint")

    def paint(rgb: np.ndarray, visible: np.ndarray, amodal: np.ndarray) -> np.ndarray:
        if painter == "biharmonic":
            return _as_uint8(paint_biharmonic(rgb, visible, amodal))
        painting, _ = paint_photo(pix2gestalt, _as_uint8(rgb), visible, steps, seed)
        h, w = visible.shape
        return np.asarray(Image.fromarray(painting).resize((w, h), Image.BICUBIC))

    def predict(item):
        rgb = item["image"].permute(1, 2, 0).float().numpy() if hasattr(item["image"], "permute") else np.asarray(item["image"])
        visible, amodal = item_map(item, "visible_mask") > 0.5, item_map(item, "amodal_mask") > 0.5
        observed = item_map(item, "observed_depth").astype(np.float64)
        depth = normalise_disparity(depth_model.infer_image(paint(rgb, visible, amodal))).astype(np.float64)
        fitted = align(depth, observed, visible & amodal, check=False)
        return np.where(amodal, fitted, observed).astype(np.float32)

    return predict
