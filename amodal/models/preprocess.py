"""How a sample's rasters become network input: one function per mode, shared by training, evaluation and prediction.

Two modes:

- ``"paper"`` — as the official loader does for training, evaluation *and* inference:
  every raster (RGB, masks, depth maps) squashed to ``size × size`` (518 for Amodal-DAV2,
  512 for Amodal-DepthFM) with ``nearest-exact`` resampling (torchvision's
  ``InterpolationMode.NEAREST_EXACT``). The aspect ratio is lost and RGB is not smoothed,
  but the network sees exactly what it was trained on.
- ``"keep-aspect"`` — ours: scale so the *shorter* side is ``size`` (no distortion;
  images and depth bilinear with antialiasing, masks nearest-exact), then, with
  ``crop=True``, the centred ``size × size`` square (training batches need one size).

In both modes the visible mask is intersected with the amodal mask after resampling,
so ``M_vis ⊆ M_a`` holds at every size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MODES = ("paper", "keep-aspect")
MASK_KEYS = ("amodal_mask", "visible_mask")


def resample(rasters: dict, size: int, mode: str = "paper", crop: bool = True) -> dict:
    """Resample the ``(C, H, W)`` tensors of ``rasters`` (other values pass through).

    Args:
        rasters: e.g. ``image`` (3, H, W), ``amodal_mask``, ``visible_mask``,
            ``observed_depth``, ``target_depth`` (1, H, W); masks are keys in :data:`MASK_KEYS`.
        size: the square side (``"paper"``), or the shorter side (``"keep-aspect"``).
        mode: one of :data:`MODES`.
        crop: ``"keep-aspect"`` only: cut the centred ``size × size`` square.

    Returns:
        A new dict; masks stay in {0, 1}.

    Raises:
        ValueError: an unknown mode or a size < 1.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if size < 1:
        raise ValueError(f"size must be ≥ 1, got {size}")
    out = {}
    for key, value in rasters.items():
        if not isinstance(value, torch.Tensor) or value.ndim != 3:
            out[key] = value
            continue
        h, w = value.shape[-2:]
        if mode == "paper":
            out[key] = F.interpolate(value[None].float(), (size, size), mode="nearest-exact")[0]
            continue
        shape = keep_aspect_shape(h, w, size)
        if key in MASK_KEYS:
            resized = F.interpolate(value[None].float(), shape, mode="nearest-exact")[0]
        else:
            resized = F.interpolate(value[None].float(), shape, mode="bilinear", align_corners=False, antialias=True)[0]
            resized = resized.clamp(0, 1) if value.is_floating_point() else resized
        if crop:
            top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
            resized = resized[:, top : top + size, left : left + size]
        out[key] = resized
    if "amodal_mask" in out and "visible_mask" in out:
        out["visible_mask"] = out["visible_mask"] * out["amodal_mask"]
    return out


def keep_aspect_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The ``(H, W)`` that ``"keep-aspect"`` without crop gives a ``height × width`` raster."""
    scale = size / min(height, width)
    return max(size, round(height * scale)), max(size, round(width * scale))
