"""How much a wrong amodal mask costs: the paper's first stated limitation, measured.

"Inaccurate or ambiguous masks lead to cascading errors" (paper §5). Here the amodal mask
``M_a`` given to a model is perturbed — eroded or dilated by ``k`` pixels, its outline
jittered, or replaced by the convex hull of the visible mask (the explorer's starting
guess) — while the scoring keeps the *true* hidden region and target. The prediction is
used as :func:`amodal.inference.predict` uses it: the model's output inside the mask it
was given, ``D_o`` outside, so a mask that is too small leaves hidden pixels at the
occluder's depth, and one that is too large paints the background.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
from scipy.ndimage import binary_dilation, binary_erosion, distance_transform_edt, gaussian_filter
from skimage.morphology import convex_hull_image

from amodal.evaluation.scoring import evaluate_items, summarise

PERTURBATIONS = ("clean", "erode", "dilate", "jitter", "convex_hull")

# The settings of the study in notebook 06: (kind, pixels).
DEFAULT_SETTINGS = (("clean", 0), ("erode", 2), ("erode", 4), ("dilate", 2), ("dilate", 4), ("jitter", 2),
                    ("jitter", 4), ("convex_hull", 0))


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius ** 2


def perturb_mask(amodal_mask: np.ndarray, visible_mask: np.ndarray, kind: str, pixels: int = 0,
                 seed: int = 0) -> np.ndarray:
    """A wrong amodal mask, ``(H, W)`` bool.

    Args:
        amodal_mask, visible_mask: ``(H, W)`` bool, the true ``M_a`` and ``M_vis``.
        kind: ``"clean"`` (unchanged), ``"erode"`` / ``"dilate"`` (by a disk of radius
            ``pixels``), ``"jitter"`` (the outline moved in and out by a smooth random field
            of standard deviation ``pixels``, seeded by ``seed``), ``"convex_hull"`` (the
            convex hull of ``M_vis``; ``pixels`` unused).
        pixels: the amount.

    Raises:
        ValueError: an unknown kind or a negative amount.
    """
    amodal = np.asarray(amodal_mask, bool)
    if kind not in PERTURBATIONS:
        raise ValueError(f"kind must be one of {PERTURBATIONS}, got {kind!r}")
    if pixels < 0:
        raise ValueError(f"pixels must be ≥ 0, got {pixels}")
    if kind == "clean" or (pixels == 0 and kind != "convex_hull"):
        return amodal.copy()
    if kind == "erode":
        return binary_erosion(amodal, _disk(pixels))
    if kind == "dilate":
        return binary_dilation(amodal, _disk(pixels))
    if kind == "jitter":
        # signed distance to the outline (> 0 inside), shifted by smooth noise of std `pixels`
        signed = distance_transform_edt(amodal) - distance_transform_edt(~amodal)
        noise = gaussian_filter(np.random.default_rng(seed).normal(size=amodal.shape), sigma=3.0)
        noise *= pixels / max(noise.std(), 1e-12)
        return signed + noise > 0

    visible = np.asarray(visible_mask, bool)
    return convex_hull_image(visible) if visible.any() else amodal.copy()


def given_mask(predictor: Callable[[dict], np.ndarray]) -> Callable[[dict], np.ndarray]:
    """Run ``predictor`` with the item's ``given_mask`` as its ``amodal_mask``, and use the
    result as :func:`amodal.inference.predict` does: inside that mask; ``D_o`` outside.

    The item keeps its true ``amodal_mask`` for scoring.
    """
    def predict(item):
        mask = np.asarray(item["given_mask"], bool)
        view = dict(item, amodal_mask=torch.from_numpy(mask.astype(np.float32))[None])
        return np.where(mask, predictor(view), item["observed_depth"][0].numpy()).astype(np.float32)

    return predict


def mask_quality_study(predictors: dict[str, Callable[[dict], np.ndarray]], items: Iterable[dict],
                       settings=DEFAULT_SETTINGS, seed: int = 0, progress: bool = False) -> list[dict]:
    """Hidden RMSE×100 of each predictor under each mask perturbation.

    Each predictor sees the perturbed ``amodal_mask``; the metrics use the true ``M_a``,
    ``M_vis`` and target. A perturbed mask that comes out empty is replaced by the true one
    (and counted in ``empty``), as a user would not run a model on no object.

    Returns:
        one row per (predictor, setting): ``predictor``, ``kind``, ``pixels``, ``rmse``
        (×100, overall), ``hard_rmse``, ``delta`` (RMSE×100 minus the clean one), ``empty``.
    """
    items = list(items)
    rows = []
    for name, predictor in predictors.items():
        clean = None
        for kind, pixels in settings:
            scored, empty = [], 0
            for k, item in enumerate(items):
                true = item["amodal_mask"][0].numpy() > 0.5
                mask = perturb_mask(true, item["visible_mask"][0].numpy() > 0.5, kind, pixels, seed=seed + k)
                if not mask.any():
                    mask, empty = true, empty + 1
                scored.append(dict(item, given_mask=mask))
            records = evaluate_items(given_mask(predictor), scored, progress=progress)
            overall = summarise(records)["raw"]
            rmse = 100.0 * overall["overall"]["rmse"]
            clean = rmse if kind == "clean" else clean
            rows.append({"predictor": name, "kind": kind, "pixels": pixels, "rmse": rmse,
                         "hard_rmse": 100.0 * overall["hard"]["rmse"],
                         "delta": rmse - clean if clean is not None else float("nan"), "empty": empty})
    return rows
