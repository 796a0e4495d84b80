"""The end-to-end cost of a guessed amodal mask: hidden depth error with a completer's ``M_a``.

In the wild nobody hands the depth model the true ``M_a``: a completer guesses it from the
photo and ``M_vis`` (:mod:`amodal.evaluation.mask_completion`). This module runs a depth
predictor with each completer's mask in place of the true one, uses the prediction as
:func:`amodal.inference.predict` does (the model's output inside the mask it was given,
``D_o`` outside: :func:`amodal.evaluation.mask_quality.given_mask`), and scores it by the
paper's protocol (§5.1) on the *true* hidden region ``M_a ∧ ¬M_vis``: a mask that misses
part of the hidden region leaves it at the occluder's depth, one that overshoots paints
the background but is not scored there.

Reported per completer: hidden RMSE×100 (raw), mean over samples, overall and per
visible-ratio bucket, with 95 % percentile-bootstrap intervals
(:func:`amodal.evaluation.intervals.bootstrap_ci`), and the paired per-sample difference
from the true mask (``true`` must be among the completers for that), bootstrapped too.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from amodal.evaluation.intervals import bootstrap_ci
from amodal.evaluation.mask_completion import GROUPS, Completer
from amodal.evaluation.mask_quality import given_mask
from amodal.evaluation.predictors import Predictor, item_map
from amodal.evaluation.scoring import evaluate_items


def _photo(item: dict) -> np.ndarray:
    """The item's ``image`` ``(3, H, W)`` in [0, 1] as the completers take it: ``(H, W, 3)`` uint8."""
    image = item["image"]
    image = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    return np.clip(np.rint(image.transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)


def depth_with_completed_masks(predictor: Predictor, completers: dict[str, Completer | None], items: Iterable[dict],
                               progress: bool = False) -> dict[str, list[dict]]:
    """Score ``predictor`` given each completer's ``M_a``.

    Args:
        predictor: a depth predictor of :mod:`amodal.evaluation.predictors` (it reads the item's
            ``amodal_mask``, which is replaced by the completer's).
        completers: ``{name: completer(image (H, W, 3) uint8, M_vis (H, W) bool) -> M̂_a}``;
            a value ``None`` means the item's true ``M_a``.
        items: evaluation items (``image`` ``(3, H, W)``; ``amodal_mask``, ``visible_mask``,
            ``observed_depth``, ``target_depth`` ``(1, H, W)``; ``bucket``, ``id``), e.g. of
            :class:`amodal.data.streams.SynthStream`.

    Returns:
        ``{name: records}``, the records of :func:`amodal.evaluation.scoring.evaluate_items`
        (scored on the true hidden region), each with ``mask_hidden_share``: the share of the
        true hidden pixels inside the mask the predictor was given.
    """
    items = list(items)
    results = {}
    for name, completer in completers.items():
        given = []
        for item in items:
            visible = item_map(item, "visible_mask") > 0.5
            amodal = item_map(item, "amodal_mask") > 0.5
            mask = amodal if completer is None else np.asarray(completer(_photo(item), visible), bool) | visible
            given.append(dict(item, given_mask=mask))
        records = evaluate_items(given_mask(predictor), given, progress=progress)
        for record, item in zip(records, given):
            hidden = (item_map(item, "amodal_mask") > 0.5) & ~(item_map(item, "visible_mask") > 0.5)
            record["mask_hidden_share"] = float((item["given_mask"] & hidden).sum() / max(hidden.sum(), 1))
        results[name] = records
    return results


def summarise_depth_with_masks(results: dict[str, list[dict]], reference: str | None = "true",
                               resamples: int = 2000) -> dict:
    """Hidden RMSE×100 (raw) per completer and group, with intervals, and the paired difference from ``reference``.

    Returns:
        ``{name: {group: {"rmse_x100", "rmse_x100_ci", "count", and when reference is given and
        is another name: "minus_reference", "minus_reference_ci"}}}`` for the groups
        ``overall``, ``easy``, ``mid``, ``hard`` present. Means are over samples (NaNs dropped).
    """
    if reference is not None and reference not in results:
        raise ValueError(f"reference {reference!r} is not among the completers {sorted(results)}")
    summary = {}
    for name, records in results.items():
        rows = {}
        for group in GROUPS:
            index = [k for k, r in enumerate(records) if group == "overall" or r["bucket"] == group]
            if not index:
                continue
            values = np.array([100.0 * records[k]["raw"]["rmse"] for k in index])
            row = {"rmse_x100": float(np.nanmean(values)), "rmse_x100_ci": list(bootstrap_ci(values, resamples)),
                   "count": len(index)}
            if reference is not None and name != reference:
                base = np.array([100.0 * results[reference][k]["raw"]["rmse"] for k in index])
                row["minus_reference"] = float(np.nanmean(values - base))
                row["minus_reference_ci"] = list(bootstrap_ci(values - base, resamples))
            rows[group] = row
        summary[name] = rows
    return summary


def format_depth_with_masks(summary: dict, groups: tuple[str, ...] = GROUPS) -> str:
    """A markdown table: one row per mask, hidden RMSE×100 [95 % CI] per group."""
    lines = ["| mask given to the model | " + " | ".join(f"{g} RMSE×100 [95 % CI]" for g in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for name, rows in summary.items():
        cells = []
        for group in groups:
            row = rows.get(group)
            cells.append("—" if row is None else
                         f"{row['rmse_x100']:.2f} [{row['rmse_x100_ci'][0]:.2f}, {row['rmse_x100_ci'][1]:.2f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

