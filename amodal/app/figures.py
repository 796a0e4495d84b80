"""Figures shared by the notebooks (matplotlib, headless-safe).

Depth is always drawn as normalised disparity with the ``Spectral_r`` colour map on a
fixed [0, 1] range, so near (1) is red, far (0) is blue, and two panels are comparable.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from amodal.adiw.depth import toy_depth_note
from amodal.export import DEPTH_CMAP, outline, point_cloud

LAYERS = ("amodal", "visible", "hidden", "occluder")
# tints (RGB in [0, 1]); the amodal mask is drawn as its outline in white
LAYER_COLOURS = {"amodal": (1.0, 1.0, 1.0), "visible": (0.15, 0.75, 0.25), "hidden": (0.85, 0.15, 0.85),
                 "occluder": (0.15, 0.45, 0.95)}
TINT = 0.45


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


# ----------------------------------------------------------------------------- the explorer's figures (notebook 07)
def overlay(image: np.ndarray, masks: Mapping[str, np.ndarray | None], layers: Iterable[str] = LAYERS) -> np.ndarray:
    """``image`` (H, W, 3) in [0, 1] with the chosen layers: each tinted mask blended as
    ``(1 − 0.45)·pixel + 0.45·colour`` in the order of :data:`LAYERS`, the amodal mask's
    one-pixel outline painted white last. Masks that are ``None`` are skipped."""
    out = np.array(image, np.float64, copy=True)
    chosen = set(layers)
    for name in LAYERS:
        mask = masks.get(name)
        if name == "amodal" or name not in chosen or mask is None:
            continue
        out[mask] = (1 - TINT) * out[mask] + TINT * np.asarray(LAYER_COLOURS[name])
    if "amodal" in chosen and masks.get("amodal") is not None:
        out[outline(masks["amodal"])] = LAYER_COLOURS["amodal"]
    return out


def object_points(depth: np.ndarray, amodal_mask: np.ndarray, visible_mask: np.ndarray, most: int = 4000) -> dict:
    """The object's points (:func:`amodal.export.point_cloud`), ``{"visible": (N, 3), "hidden": (M, 3)}``,
    every k-th pixel kept so that the two together hold at most ``most`` points."""
    amodal = np.asarray(amodal_mask, bool)
    visible = np.asarray(visible_mask, bool) & amodal
    step = max(1, int(math.ceil(amodal.sum() / most)))
    keep = np.zeros(amodal.shape, bool)
    keep.ravel()[np.flatnonzero(amodal)[::step]] = True
    return {name: point_cloud(depth, keep & part)[0] for name, part in (("visible", visible), ("hidden", amodal & ~visible))}


POINT_COLOURS = {"visible": "tab:green", "hidden": "tab:purple"}


def draw_points(ax, points: dict, title: str | None = None) -> None:
    """Scatter ``{"visible": (N, 3), "hidden": (M, 3)}`` camera-space points on a 3-D ``ax``
    (x right, depth into the picture, up up), visible and hidden apart."""
    for name, p in points.items():
        if len(p):
            ax.scatter(p[:, 0], p[:, 2], -p[:, 1], s=1.5, c=POINT_COLOURS.get(name, "0.5"), label=f"{name} ({len(p)})",
                       depthshade=False)
    ax.set_xlabel("x", fontsize=7), ax.set_ylabel("z (far)", fontsize=7), ax.set_zlabel("y", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.locator_params(nbins=3)
    if any(len(p) for p in points.values()):
        ax.legend(fontsize=7, loc="upper left", markerscale=4)
    if title:
        ax.set_title(title, fontsize=9)


def draw_sample_view(fig, view, layers=("amodal", "visible", "hidden", "occluder")) -> dict:
    """One sample of the explorer (:class:`amodal.app.explorer.SampleView`) on ``fig``: overlays,
    ``D_o`` / target / prediction on one scale and the error on the same span, the
    cross-section and the 3-D points. Returns the axes by name."""
    fig.clear()
    grid = fig.add_gridspec(2, 5, height_ratios=(1.0, 1.1), hspace=0.25, wspace=0.2, left=0.03, right=0.97, top=0.95, bottom=0.08)
    ax = {name: fig.add_subplot(grid[0, k]) for k, name in enumerate(("image", "observed", "target", "prediction", "error"))}
    m, (lo, hi) = view.maps, view.scale
    ax["image"].imshow(overlay(m["image"], m, layers))
    row = view.row
    score = f" · RMSE×100 {100 * row['raw_rmse']:.2f}" if isinstance(row.get("raw_rmse"), float) else ""
    ax["image"].set_title(f"{view.sample_id} · {row.get('bucket', '')}{score}", fontsize=8)
    for name, data, title in (("observed", m["observed"], "observed D_o"), ("target", m["target"], "target"),
                              ("prediction", view.prediction, view.source)):
        handle = ax[name].imshow(data, cmap=DEPTH_CMAP, vmin=lo, vmax=hi)
        ax[name].set_title(title, fontsize=8)
    fig.colorbar(handle, ax=[ax["observed"], ax["target"], ax["prediction"]], shrink=0.7, pad=0.01)
    error = ax["error"].imshow(view.error, cmap="magma", vmin=view.error_range[0], vmax=view.error_range[1])
    ax["error"].set_title("|prediction − target| on M_a", fontsize=8)
    fig.colorbar(error, ax=ax["error"], shrink=0.7, pad=0.01)
    for a in ax.values():
        a.set_axis_off()
        (a.axhline if view.orientation == "row" else a.axvline)(view.position, color="k", lw=0.8, ls="--")
    profile = fig.add_subplot(grid[1, :3])
    x, p = view.distance, view.profiles
    hidden = p["hidden"]
    profile.fill_between(x, 0, 1, where=hidden, color=(0.85, 0.15, 0.85, 0.12), transform=profile.get_xaxis_transform(),
                         label="hidden (M_inv)")
    profile.plot(x, p["D_o"], color="0.55", ls=":", lw=1.2, label="D_o")
    for name in view.profiles:
        if name not in ("truth", "D_o", "hidden", "observed", view.source):  # the "observed" fill is D_o
            profile.plot(x, p[name], lw=0.8, alpha=0.8, label=name)
    profile.plot(x, p[view.source], color="tab:red", lw=1.8, label=view.source)
    profile.plot(x, p["truth"], color="k", lw=1.8, label="truth")
    profile.set_xlabel(f"{'column' if view.orientation == 'row' else 'row'} along {view.orientation} {view.position} (pixels)", fontsize=8)
    profile.set_ylabel("normalised disparity", fontsize=8)
    profile.tick_params(labelsize=7)
    profile.legend(fontsize=6, ncol=3, loc="best")
    ax["profile"] = profile
    ax["points"] = fig.add_subplot(grid[1, 3:], projection="3d")
    draw_points(ax["points"], view.points, "the object's points (drag to rotate)")
    return ax


def draw_sample_browser(fig, browser) -> dict:
    """The current sample of a :class:`amodal.app.explorer.SampleBrowser`, the mean and the spread."""
    fig.clear()
    axes = dict(zip(("sample", "mean", "spread"), fig.subplots(1, 3)))
    region = browser.mask
    show_depth(axes["sample"], browser.current, f"sample {browser.index + 1} of {len(browser)}", mask=region)
    show_depth(axes["mean"], browser.mean, "mean", mask=region)
    spread = browser.spread if region is None else np.where(region, browser.spread, np.nan)
    handle = axes["spread"].imshow(spread, cmap="magma", vmin=0.0)
    axes["spread"].set_title("spread (std)", fontsize=9)
    axes["spread"].set_axis_off()
    fig.colorbar(handle, ax=axes["spread"], shrink=0.8)
    return axes


def overlay_photo_masks(session) -> np.ndarray:
    """A :class:`amodal.app.photo.PhotoSession`'s photo with ``M_vis`` and ``M_inv`` tinted and ``M_a`` outlined."""
    masks = {"amodal": session.amodal_mask, "visible": session.visible_mask, "hidden": session.hidden_mask}
    return overlay(session.image / 255.0, masks)


def draw_photo_session(fig, session) -> dict:
    """A :class:`amodal.app.photo.PhotoSession`: the photo with its masks and clicks (large, on the
    left, to click a small object), ``D_o``, the amodal depth and the object's points (on the right).
    Returns the axes by name (``"photo"`` takes the pointer)."""
    fig.clear()
    grid = fig.add_gridspec(3, 2, width_ratios=(2.2, 1), wspace=0.08, hspace=0.25, left=0.02, right=0.98,
                            top=0.9, bottom=0.03)
    axes = {"photo": fig.add_subplot(grid[:, 0]), "observed": fig.add_subplot(grid[0, 1]),
            "amodal": fig.add_subplot(grid[1, 1])}
    axes["photo"].imshow(overlay_photo_masks(session))
    if session.clicks:
        clicks = np.asarray(session.clicks)
        axes["photo"].plot(clicks[:, 0], clicks[:, 1], "o", color="yellow", markeredgecolor="k", ms=5)
    axes["photo"].set_title("photo: M_vis green, M_inv purple, M_a outlined", fontsize=8)
    axes["photo"].set_axis_off()
    note = toy_depth_note(session.base)
    if note:  # said before the first run, and on every picture after
        fig.suptitle(note, fontsize=8, color="firebrick", wrap=True)
    if session.depth is not None:
        show_depth(axes["observed"], session.observed_depth, "D_o: toy row prior!" if note else "base depth D_o")
        show_depth(axes["amodal"], session.depth, "amodal depth (seam blended)")
        axes["amodal"].contour(session.amodal_mask, levels=[0.5], colors="w", linewidths=0.6)
    else:
        for name in ("observed", "amodal"):
            axes[name].set_axis_off()
        axes["amodal"].text(0.5, 0.5, "press 'run' for depth", ha="center", va="center", transform=axes["amodal"].transAxes)
    axes["points"] = fig.add_subplot(grid[2, 1], projection="3d")
    if session.depth is not None:
        draw_points(axes["points"], object_points(session.depth, session.amodal_mask, session.visible_mask), "the object (drag to rotate)")
    return axes
