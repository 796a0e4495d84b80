"""Occlusion synthesis: paste a complete object over another (paper §3.1, step 3).

The target is a complete object, so its whole mask is its **amodal mask** ``M_a``.
An occluder — another complete object, from the same image or another one — is
rescaled and pasted on top; what remains of the target is the **visible mask**
``M_vis = M_a ∧ ¬M_occ``. The visible ratio ``r = |M_vis| / |M_a|`` sets the
difficulty bucket (easy r > 0.75, mid 0.5 < r ≤ 0.75, hard r ≤ 0.5), so to balance
the buckets the caller asks for a range of ``r`` and we find a placement in it.

Placement is exact rather than trial and error: for a given scale, the overlap of
the occluder with the target at every position is one cross-correlation of the two
masks (FFT), so every valid position is known at once and one is drawn uniformly.
Scales are drawn log-uniformly in ``scale_range`` (a multiple of the size that
would give the occluder the target's area) until one admits a placement.

Seeded and deterministic: the same inputs and seed give the same composite.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import correlate
from skimage.transform import resize

from amodal.metrics import BUCKET_BOUNDS

# The visible ratios a composite is drawn in, per bucket: the paper's bounds
# (amodal.metrics.BUCKET_BOUNDS) cut at 0.95 and 0.15, so that every sample hides
# something and keeps enough visible pixels to fit the scale and shift on.
MOST_VISIBLE, LEAST_VISIBLE = 0.95, 0.15
BUCKET_RANGES = {bucket: (max(low, LEAST_VISIBLE), min(high, MOST_VISIBLE)) for bucket, (low, high) in BUCKET_BOUNDS.items()}


@dataclass
class Placement:
    """Where the occluder went: its crop was scaled by ``scale`` and its top-left corner
    put at ``(top, left)``; it covers ``height × width`` pixels of the composite."""

    scale: float
    top: int
    left: int
    height: int
    width: int


@dataclass
class Composite:
    """One synthesised occlusion.

    Attributes:
        image: ``(H, W, 3)`` the composite ``I_o`` (dtype of the target image).
        amodal_mask: ``(H, W)`` bool ``M_a`` (the target's full mask).
        visible_mask: ``(H, W)`` bool ``M_vis = M_a ∧ ¬M_occ``.
        occluder_mask: ``(H, W)`` bool, the pasted pixels.
        placement: see :class:`Placement`.
        visible_ratio: ``|M_vis| / |M_a|``.
    """

    image: np.ndarray = field(repr=False)
    amodal_mask: np.ndarray = field(repr=False)
    visible_mask: np.ndarray = field(repr=False)
    occluder_mask: np.ndarray = field(repr=False)
    placement: Placement
    visible_ratio: float

    @property
    def hidden_mask(self) -> np.ndarray:
        """``M_inv = M_a ∧ ¬M_vis``."""
        return self.amodal_mask & ~self.visible_mask


def _check(image, mask, name):
    image = np.asarray(image)
    mask = np.asarray(mask, bool)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} image must be (H, W, 3), got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{name} mask has shape {mask.shape}, its image {image.shape[:2]}")
    if not mask.any():
        raise ValueError(f"{name} mask is empty")
    return image, mask


def _scaled_crop(image, mask, scale):
    """The occluder's box, rescaled: ``(image crop, mask crop)``; bilinear / nearest."""

    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    crop_img = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop_mask = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h = max(1, int(round(crop_mask.shape[0] * scale)))
    w = max(1, int(round(crop_mask.shape[1] * scale)))
    msk = resize(crop_mask.astype(np.float64), (h, w), order=0, anti_aliasing=False) > 0.5
    # Resample colour weighted by the mask, so no pixel of the occluder's own background
    # bleeds into its pasted edge (normalised convolution).
    weight = resize(crop_mask.astype(np.float64), (h, w), order=1, anti_aliasing=scale < 1)
    colour = resize(crop_img.astype(np.float64) * crop_mask[..., None], (h, w), order=1, anti_aliasing=scale < 1, preserve_range=True)
    nearest = resize(crop_img.astype(np.float64), (h, w), order=0, anti_aliasing=False, preserve_range=True)
    img = np.where(weight[..., None] > 1e-6, colour / np.maximum(weight, 1e-6)[..., None], nearest)
    return img, msk


def visible_ratio_map(amodal_mask: np.ndarray, occluder_crop: np.ndarray) -> np.ndarray:
    """Visible ratio of the target for every placement of an occluder inside the image.

    Args:
        amodal_mask: ``(H, W)`` bool target mask.
        occluder_crop: ``(h, w)`` bool occluder mask, ``h ≤ H``, ``w ≤ W``.

    Returns:
        ``(H − h + 1, W − w + 1)`` float64: entry ``[top, left]`` is ``r`` when the
        crop's top-left corner sits at ``(top, left)``.
    """
    overlap = correlate(amodal_mask.astype(np.float64), occluder_crop.astype(np.float64), mode="valid", method="fft")
    area = float(amodal_mask.sum())
    return 1.0 - np.rint(overlap) / area


def paste_occluder(
    target_image: np.ndarray,
    target_mask: np.ndarray,
    occluder_image: np.ndarray,
    occluder_mask: np.ndarray,
    visible_range: tuple[float, float] = BUCKET_RANGES["mid"],
    seed: int | np.random.Generator = 0,
    scale_range: tuple[float, float] = (0.6, 1.6),
    attempts: int = 8,
) -> Composite | None:
    """Paste the occluder over the target so that the visible ratio lands in ``visible_range``.

    Args:
        target_image: ``(H, W, 3)``, uint8 or float.
        target_mask: ``(H, W)`` bool, the target's complete mask (becomes ``M_a``).
        occluder_image: ``(H', W', 3)``, the image the occluder comes from (may be the target's).
        occluder_mask: ``(H', W')`` bool.
        visible_range: ``(low, high)``; the result has ``low < r ≤ high``.
        seed: an int or a numpy Generator.
        scale_range: occluder size as a multiple of the size with the target's area
            (linear, drawn log-uniformly).
        attempts: how many scales to try.

    Returns:
        A :class:`Composite`, or ``None`` when no tried scale admits a placement.
    """
    target_image, target_mask = _check(target_image, target_mask, "target")
    occluder_image, occluder_mask = _check(occluder_image, occluder_mask, "occluder")
    low, high = visible_range
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"visible_range must satisfy 0 <= low < high <= 1, got {visible_range}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    H, W = target_mask.shape
    base = math.sqrt(target_mask.sum() / occluder_mask.sum())
    for _ in range(attempts):
        scale = base * math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))
        crop_img, crop_mask = _scaled_crop(occluder_image, occluder_mask, scale)
        h, w = crop_mask.shape
        if h > H or w > W or not crop_mask.any():
            continue
        ratios = visible_ratio_map(target_mask, crop_mask)
        tops, lefts = np.nonzero((ratios > low) & (ratios <= high))
        if tops.size == 0:
            continue
        pick = int(rng.integers(tops.size))
        top, left = int(tops[pick]), int(lefts[pick])
        occluder = np.zeros((H, W), bool)
        occluder[top : top + h, left : left + w] = crop_mask
        image = target_image.copy()
        region = image[top : top + h, left : left + w]
        pasted = crop_img.astype(image.dtype) if image.dtype.kind == "f" else np.clip(np.rint(crop_img), 0, 255).astype(image.dtype)
        region[crop_mask] = pasted[crop_mask]
        visible = target_mask & ~occluder
        return Composite(
            image=image,
            amodal_mask=target_mask.copy(),
            visible_mask=visible,
            occluder_mask=occluder,
            placement=Placement(scale, top, left, h, w),
            visible_ratio=float(visible.sum() / target_mask.sum()),
        )
    return None
