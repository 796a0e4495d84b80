"""The paper's label recipe, step for step as the official label script makes it.

Our default labels (:func:`amodal.adiw.sample.pseudo_label`) keep each image's own size
and aspect. The official script (``sam_pl_gen_dav2.py``) does this instead, per sample:

1. squash the composite ``I_o`` and the original photo ``I_b`` to 518 × 518 (PIL's
   ``resize``, bicubic) and run Depth Anything V2 (ViT-G in the paper) on each;
2. min-max normalise each disparity map at 518²;
3. squash the amodal and visible masks the same way (PIL bicubic on the 8-bit mask,
   then ``> 0``);
4. fit ``s·D_b + t ≈ D_o`` by least squares on ``M_vis`` and paste ``s·D_b + t`` inside
   ``M_a`` into ``D_o``;
5. store the result as a 16-bit PNG at 512 × 512 (``× 65535``, PIL resize).

Step 5 has a bug: the pasted values are not clipped, and ``astype(np.uint16)`` wraps a
value of 1.02 around to 0.02 (and −0.01 to 0.99) — a near pixel becomes a far one.
:func:`paper_label` clips (``clip=False`` reproduces the wrap, for notebook 01 to show).
Any DAV2 size can make the labels; the one used is recorded by the caller.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage.transform import resize

from amodal.align import scale_shift

DEPTH_SIZE = 518
LABEL_SIZE = 512
UINT16_MAX = 65535


def squash_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 → ``(size, size, 3)`` uint8 with PIL's bicubic resize (the official call)."""

    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.Resampling.BICUBIC))


def squash_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """``(H, W)`` bool → ``(size, size)`` bool: the 8-bit mask resized bicubically, then ``> 0``."""

    mask8 = Image.fromarray(np.asarray(mask, bool).astype(np.uint8) * 255)
    return np.asarray(mask8.resize((size, size), Image.Resampling.BICUBIC)) > 0


def to_uint16(depth: np.ndarray, clip: bool = True) -> np.ndarray:
    """Depth in [0, 1] → 16-bit codes. ``clip=False`` is the official ``astype`` that wraps."""
    scaled = np.asarray(depth, np.float64) * UINT16_MAX
    if clip:
        return np.clip(np.rint(scaled), 0, UINT16_MAX).astype(np.uint16)
    return scaled.astype(np.int64).astype(np.uint16)  # C-style truncation, then modulo 2¹⁶


def squash_depth(depth: np.ndarray, size: int, clip: bool = True) -> np.ndarray:
    """A depth map stored as the official 16-bit PNG at ``size²`` and read back in [0, 1]."""

    codes = Image.fromarray(to_uint16(depth, clip)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(codes).astype(np.float32) / UINT16_MAX


@dataclass
class PaperLabel:
    """A sample made by the official recipe, at ``LABEL_SIZE``.

    Attributes:
        image: ``(S, S, 3)`` uint8, the composite squashed.
        observed_depth: ``(S, S)`` float32 ``D_o``.
        amodal_mask, visible_mask: ``(S, S)`` bool.
        target_depth: ``(S, S)`` float32, the label.
        scale, shift: the fit at ``DEPTH_SIZE``.
        out_of_range: fraction of ``M_a``'s pixels (at ``DEPTH_SIZE``) whose pasted value
            left [0, 1] — the pixels the official uint16 cast wraps around.
    """

    image: np.ndarray
    observed_depth: np.ndarray
    amodal_mask: np.ndarray
    visible_mask: np.ndarray
    target_depth: np.ndarray
    scale: float
    shift: float
    out_of_range: float


def _normalise(depth: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth, np.float64)
    low, high = depth.min(), depth.max()
    if not high > low:
        raise ValueError("the depth model returned a constant map; it cannot be min-max normalised")
    return (depth - low) / (high - low)


def paper_label(composite, background, amodal_mask, visible_mask, estimator, depth_size: int = DEPTH_SIZE,
                label_size: int = LABEL_SIZE, clip: bool = True) -> PaperLabel:
    """Make one sample the way the official label script does (see the module docstring).

    Args:
        composite: ``I_o``, ``(H, W, 3)`` uint8.
        background: ``I_b``, the original photo, ``(H', W', 3)`` uint8 (any size: it is squashed too).
        amodal_mask, visible_mask: ``(H, W)`` bool, on the composite.
        estimator: a :class:`amodal.adiw.depth.DepthEstimator`; its output is resized to
            ``depth_size`` if it is not already.
        clip: clip the label to [0, 1] (ours) or let it wrap like the official cast.

    Raises:
        ValueError: too few visible pixels to fit, or a constant depth map.
    """

    squashed = [squash_rgb(composite, depth_size), squash_rgb(background, depth_size)]
    depths = []
    for depth in estimator.predict(squashed):
        depth = np.asarray(depth, np.float64)
        if depth.shape != (depth_size, depth_size):
            depth = resize(depth, (depth_size, depth_size), order=0, anti_aliasing=False)  # the official nearest
        depths.append(_normalise(depth))
    observed, base = depths
    amodal = squash_mask(amodal_mask, depth_size)
    visible = squash_mask(visible_mask, depth_size) & amodal
    scale, shift = scale_shift(base, observed, visible)
    combined = observed.copy()
    combined[amodal] = scale * base[amodal] + shift
    out_of_range = float(((combined[amodal] < 0) | (combined[amodal] > 1)).mean())
    return PaperLabel(
        image=squash_rgb(composite, label_size),
        observed_depth=squash_depth(observed, label_size),
        amodal_mask=squash_mask(amodal_mask, label_size),
        visible_mask=squash_mask(visible_mask, label_size) & squash_mask(amodal_mask, label_size),
        target_depth=squash_depth(combined, label_size, clip),
        scale=float(scale),
        shift=float(shift),
        out_of_range=out_of_range,
    )
