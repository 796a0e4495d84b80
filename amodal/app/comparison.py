"""Where predictions differ: the hidden region cropped, error maps on one shared scale, a cross-section.

Two depth maps drawn whole on the [0, 1] colour scale look alike even when their hidden-region
RMSE differs by several units ×100: the hidden part is small and the colours span the whole
scene. :func:`draw_hidden_comparison` shows the difference where it is:

- one panel per prediction: ``prediction − truth`` cropped to the object's box (with a margin),
  on one diverging colour scale shared by every panel (symmetric about 0, its limit the largest
  hidden-region error of any panel), the hidden region ``M_inv`` outlined, its RMSE×100 in the
  title;
- one cross-section along the row with the most hidden pixels: the truth, ``D_o`` and every
  prediction, the hidden stretch shaded.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from amodal.app.explorer import cross_section, line_ends, line_through_hidden

ERROR_CMAP = "RdBu_r"  # red: predicted nearer than the truth, blue: farther


def object_box(mask: np.ndarray, margin: float = 0.15) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` (end exclusive) of ``mask``'s box grown by ``margin`` of its
    size on each side, inside the map.

    Raises:
        ValueError: an empty mask.
    """
    rows, cols = np.nonzero(np.asarray(mask, bool))
    if rows.size == 0:
        raise ValueError("the mask is empty: no object to crop to")
    h, w = np.shape(mask)
    pad_r, pad_c = int(round(margin * (np.ptp(rows) + 1))), int(round(margin * (np.ptp(cols) + 1)))
    return (max(0, rows.min() - pad_r), min(h, rows.max() + 1 + pad_r),
            max(0, cols.min() - pad_c), min(w, cols.max() + 1 + pad_c))


def hidden_errors(predictions: Mapping[str, np.ndarray], truth: np.ndarray, hidden_mask: np.ndarray) -> tuple[dict, float]:
    """``({name: (H, W) prediction − truth}, limit)``: the error maps and the shared colour limit,
    the largest absolute error inside ``hidden_mask`` over every prediction (at least 1e-6)."""
    hidden = np.asarray(hidden_mask, bool)
    truth = np.asarray(truth, np.float64)
    errors = {name: np.asarray(p, np.float64) - truth for name, p in predictions.items()}
    limit = max([float(np.abs(e[hidden]).max()) for e in errors.values() if hidden.any()] + [1e-6])
    return errors, limit


def draw_hidden_comparison(fig, predictions: Mapping[str, np.ndarray], truth: np.ndarray, amodal_mask: np.ndarray,
                           visible_mask: np.ndarray, observed_depth: np.ndarray | None = None) -> dict:
    """Draw the comparison of the module docstring on ``fig``; returns the axes by name.

    Args:
        predictions: name → (H, W) predicted normalised disparity.
        truth: (H, W) ``D_gt``.
        amodal_mask, visible_mask: (H, W) bool ``M_a``, ``M_vis``.
        observed_depth: (H, W) ``D_o``, drawn in the cross-section when given.
    """
    amodal, visible = np.asarray(amodal_mask, bool), np.asarray(visible_mask, bool)
    hidden = amodal & ~visible
    errors, limit = hidden_errors(predictions, truth, hidden)
    top, bottom, left, right = object_box(amodal)
    fig.clear()
    count = len(predictions)
    grid = fig.add_gridspec(2, count, height_ratios=(1.3, 1), hspace=0.35)
    axes, handle = {}, None
    hidden_crop = hidden[top:bottom, left:right].astype(float)
    for k, (name, error) in enumerate(errors.items()):
        ax = axes[name] = fig.add_subplot(grid[0, k])
        crop = np.where(amodal, error, np.nan)[top:bottom, left:right]
        handle = ax.imshow(crop, cmap=ERROR_CMAP, vmin=-limit, vmax=limit)
        ax.contour(hidden_crop, levels=[0.5], colors="k", linewidths=0.7)
        rmse = 100 * float(np.sqrt(np.mean(error[hidden] ** 2))) if hidden.any() else float("nan")
        ax.set_title(f"{name}\nhidden RMSE×100 {rmse:.2f}", fontsize=8)
        ax.set_axis_off()
    fig.colorbar(handle, ax=[axes[name] for name in errors], shrink=0.8, label="prediction − truth")
    row = line_through_hidden(hidden)
    start, end = line_ends(hidden.shape, "row", row)
    maps = {"truth": truth, **({"D_o": observed_depth} if observed_depth is not None else {}), **predictions,
            "hidden": hidden}
    distance, values = cross_section(maps, start, end)
    line = axes["cross-section"] = fig.add_subplot(grid[1, :])
    stretch = values.pop("hidden")
    # the y range of what is compared on the hidden stretch (D_o, off the scale there, is not):
    # on [0, 1] differences of a few hundredths would be invisible
    shown = np.concatenate([values["truth"][stretch]] + [values[n][stretch] for n in predictions]) if stretch.any() else [0, 1]
    pad = max(0.01, 0.25 * float(np.ptp(shown)))
    low, high = max(0.0, float(np.min(shown)) - pad), min(1.0, float(np.max(shown)) + pad)
    line.fill_between(distance, low, high, where=stretch, color="0.9", label="hidden")
    line.plot(distance, values.pop("truth"), color="k", lw=2, label="truth")
    if "D_o" in values:
        line.plot(distance, values.pop("D_o"), color="0.5", ls=":", label="D_o")
    for name, value in values.items():
        line.plot(distance, value, lw=1, label=name)
    line.set_xlim(left, right - 1)
    line.set_ylim(low, high)
    line.set_xlabel(f"column, along row {row} (the most hidden pixels)", fontsize=8)
    line.set_ylabel("disparity", fontsize=8)
    line.legend(fontsize=7, ncol=min(6, count + 3))
    return axes
