"""Figures shared by the notebooks (matplotlib, headless-safe).

Depth is always drawn as normalised disparity with the ``Spectral_r`` colour map on a
fixed [0, 1] range, so near (1) is red, far (0) is blue, and two panels are comparable.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

DEPTH_CMAP = "Spectral_r"


def to_hwc(image) -> np.ndarray:
    """An image as ``(H, W, 3)`` or ``(H, W)`` numpy, from ``(3, H, W)``/``(1, 3, H, W)`` torch or numpy."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def mask_overlay(image, masks: Sequence, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
    """``image`` (H, W, 3) in [0, 1] or uint8 with each boolean mask (H, W) tinted its own colour."""
    base = to_hwc(image).astype(np.float64)
    if base.max() > 1.0:
        base = base / 255.0
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    colours = np.random.default_rng(seed).uniform(0.2, 1.0, size=(len(masks), 3))
    out = base.copy()
    for colour, mask in zip(colours, masks):
        m = to_hwc(mask).astype(bool)
        out[m] = (1 - alpha) * out[m] + alpha * colour
    return np.clip(out, 0.0, 1.0)


def show_depth(ax, depth, title: str | None = None, mask=None, vmin: float = 0.0, vmax: float = 1.0):
    """Draw normalised disparity on ``ax``; pixels outside ``mask`` (if given) are left blank."""
    d = to_hwc(depth).astype(np.float64)
    if mask is not None:
        d = np.where(to_hwc(mask).astype(bool), d, np.nan)
    handle = ax.imshow(d, cmap=DEPTH_CMAP, vmin=vmin, vmax=vmax)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return handle


def image_grid(panels: Sequence, titles: Sequence[str] | None = None, ncols: int = 4,
               size: float = 2.6, depth: Sequence[bool] | None = None):
    """One figure with ``panels`` (images, masks or depth maps) in a grid.

    Args:
        panels: arrays or tensors; RGB ``(H, W, 3)``/``(3, H, W)`` or single-channel maps.
        titles: one per panel.
        ncols: panels per row.
        depth: per panel, draw as depth (colour map on [0, 1]) rather than grey/RGB.
    """
    n = len(panels)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_axis_off()
            continue
        title = titles[i] if titles else None
        if depth is not None and depth[i]:
            show_depth(ax, panels[i], title)
            continue
        arr = to_hwc(panels[i])
        ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
        ax.set_axis_off()
        if title:
            ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
