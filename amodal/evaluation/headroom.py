"""How far below a fill a yardstick lets a model go: corrections of the fill fitted on the yardstick itself.

A learnt model that corrects the harmonic fill (as the tiny Amodal-DAV2 does) can only beat
it where the hidden truth differs from the fill in a way the visible part foretells. This
module asks how large that part is on a given set of items, with the answer cheating in the
model's favour: a per-pixel correction ``truth ≈ features · w`` of the fill, fitted by least
squares on the very hidden pixels it is then scored on (in-sample). A model trained elsewhere
does not see these pixels; where even this fit cannot reach a goal, the goal is out of reach
of anything that reads the scene the way the features do.

The features of a hidden pixel (:data:`FEATURES`) are what the fill and the visible part say
about it: the fill ``f`` itself, a constant, its distance ``d`` to the nearest visible pixel
(a share of the image side) and ``d²``, ``f·d`` (the fill of a deep hidden middle comes
from a far-away outline), the pixel's row and column, ``f²``, the mean and spread of ``D_o``
on ``M_vis``, the hidden share of the object, and ``f`` times that share. The fit weights
every item's pixels by ``1 / (its hidden pixel count)``, so each item counts once, as the
metric averages items.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from scipy.ndimage import distance_transform_edt

from amodal.evaluation.predictors import item_map

#: The features of a hidden pixel, in column order (see the module docstring).
FEATURES = ("fill", "one", "distance", "distance²", "fill×distance", "row", "column", "fill²",
            "visible mean", "visible spread", "hidden share", "fill×hidden share")


def correction_features(fill: np.ndarray, observed: np.ndarray, visible: np.ndarray,
                        hidden: np.ndarray) -> np.ndarray:
    """The :data:`FEATURES` of every hidden pixel, ``(N, 12)`` float64, in row-major pixel order.

    Args:
        fill: ``(H, W)`` the fill's prediction.
        observed: ``(H, W)`` ``D_o``.
        visible: ``(H, W)`` bool ``M_vis`` (not empty).
        hidden: ``(H, W)`` bool, the pixels to describe.
    """
    if not visible.any():
        raise ValueError("no visible pixel: the fill and its features are undefined")
    h, w = fill.shape
    side = max(h, w)
    distance = distance_transform_edt(~visible) / side
    rows, cols = np.mgrid[0:h, 0:w] / side
    f = np.asarray(fill, np.float64)
    share = hidden.sum() / (hidden.sum() + visible.sum())
    seen = np.asarray(observed, np.float64)[visible]
    columns = [f, np.ones_like(f), distance, distance ** 2, f * distance, rows, cols, f ** 2,
               np.full_like(f, seen.mean()), np.full_like(f, seen.std()), np.full_like(f, share), f * share]
    return np.stack([c[hidden] for c in columns], axis=1)


@dataclass
class FillCorrection:
    """A fill corrected inside the hidden region by ``features · weights``; a predictor (item → ``(H, W)``).

    Attributes:
        fill: the fill's predictor (item → ``(H, W)``).
        weights: ``(K,)``, for the first ``K`` of :data:`FEATURES`.
    """

    fill: Callable[[dict], np.ndarray]
    weights: np.ndarray

    def __call__(self, item: dict) -> np.ndarray:
        hidden, base, features = _hidden_features(self.fill, item)
        out = base.copy()
        if hidden.any():
            out[hidden] = features[:, : len(self.weights)] @ self.weights
        return out.astype(np.float32)


def _hidden_features(fill: Callable[[dict], np.ndarray], item: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hidden, fill map, features)`` of an item: its ``M_a ∧ ¬M_vis`` ``(H, W)`` bool, the fill's
    ``(H, W)`` float64 prediction, and :func:`correction_features` of the hidden pixels (``(0, 12)``
    when none is hidden)."""
    visible = item_map(item, "visible_mask") > 0.5
    hidden = (item_map(item, "amodal_mask") > 0.5) & ~visible
    base = np.asarray(fill(item), np.float64).reshape(hidden.shape)
    if not hidden.any():
        return hidden, base, np.zeros((0, len(FEATURES)))
    return hidden, base, correction_features(base, item_map(item, "observed_depth"), visible, hidden)


def fit_fill_correction(fill: Callable[[dict], np.ndarray], items: Iterable[dict], count: int = len(FEATURES)
                        ) -> FillCorrection:
    """The least-squares :class:`FillCorrection` with the first ``count`` :data:`FEATURES`, fitted on
    the hidden pixels of ``items`` (each item's pixels weighted by one over their number).

    Raises:
        ValueError: ``count`` outside 1–12, or no item with hidden pixels.
    """
    if not 1 <= count <= len(FEATURES):
        raise ValueError(f"count must be 1–{len(FEATURES)}, got {count}")
    rows, targets, weights = [], [], []
    for item in items:
        hidden, _, features = _hidden_features(fill, item)
        if not hidden.any():
            continue
        rows.append(features[:, :count])
        targets.append(item_map(item, "target_depth").astype(np.float64)[hidden])
        weights.append(np.full(hidden.sum(), 1.0 / hidden.sum()))
    if not rows:
        raise ValueError("no item has hidden pixels to fit on")
    root = np.sqrt(np.concatenate(weights))[:, None]
    solution, *_ = np.linalg.lstsq(np.concatenate(rows) * root, np.concatenate(targets) * root[:, 0], rcond=None)
    return FillCorrection(fill, solution)
