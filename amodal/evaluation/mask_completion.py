"""How well a completer guesses the hidden part of an object: hidden-part IoU, per bucket, with intervals.

A *completer* maps ``(image, M_vis)`` to a guess of the amodal mask ``M_a`` (``(H, W)`` bool).
What it adds to ``M_vis`` is its guess of the hidden part; the score compares that with the
true hidden part ``M_inv = M_a ∧ ¬M_vis``::

    hidden IoU = |(M̂_a ∧ ¬M_vis) ∧ M_inv| / |(M̂_a ∧ ¬M_vis) ∨ M_inv|

(1 when both are empty; the items here always hide something). The IoU of the whole masks,
``|M̂_a ∧ M_a| / |M̂_a ∨ M_a|``, is reported beside it, but it flatters every completer: the
visible part, given, is most of it in the easy bucket.

Three completers are compared: ``visible`` (``M_vis`` as it is: no hidden part, IoU 0),
``convex_hull`` (the hull of ``M_vis``, the explorer's starting guess) and a trained
:class:`~amodal.models.mask_completer.MaskCompleter` (:func:`network_completer`). Means are
over items, per visible-ratio bucket and overall, with 95 % percentile-bootstrap intervals
(:func:`amodal.evaluation.intervals.bootstrap_ci`), and the completer's gain over another is
bootstrapped on the per-item differences (:func:`paired_gain`), which is tighter than
comparing two intervals.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
from tqdm.auto import tqdm

from amodal.evaluation.intervals import bootstrap_ci
from amodal.metrics import BUCKETS
from amodal.models.mask_completer import MaskCompleter, complete_mask, convex_hull_completion

Completer = Callable[[np.ndarray, np.ndarray], np.ndarray]
GROUPS = ("overall", *BUCKETS)
SCORES = ("hidden_iou", "amodal_iou")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def hidden_iou(predicted_amodal: np.ndarray, visible_mask: np.ndarray, amodal_mask: np.ndarray) -> float:
    """IoU of the predicted hidden part ``M̂_a ∧ ¬M_vis`` against ``M_a ∧ ¬M_vis`` (all ``(H, W)`` bool)."""
    predicted, visible, amodal = (np.asarray(m, bool) for m in (predicted_amodal, visible_mask, amodal_mask))
    if not predicted.shape == visible.shape == amodal.shape:
        raise ValueError(f"masks must have one shape, got {predicted.shape}, {visible.shape}, {amodal.shape}")
    return _iou(predicted & ~visible, amodal & ~visible)


def amodal_iou(predicted_amodal: np.ndarray, amodal_mask: np.ndarray) -> float:
    """IoU of the predicted and the true ``M_a`` (``(H, W)`` bool)."""
    predicted, amodal = np.asarray(predicted_amodal, bool), np.asarray(amodal_mask, bool)
    if predicted.shape != amodal.shape:
        raise ValueError(f"masks must have one shape, got {predicted.shape} and {amodal.shape}")
    return _iou(predicted, amodal)


def visible_as_is(image: np.ndarray, visible_mask: np.ndarray) -> np.ndarray:
    """The baseline that guesses nothing: ``M̂_a = M_vis``."""
    return np.asarray(visible_mask, bool).copy()


def convex_hull(image: np.ndarray, visible_mask: np.ndarray) -> np.ndarray:
    """The classical baseline: the convex hull of ``M_vis``."""
    return convex_hull_completion(visible_mask)


def network_completer(model: MaskCompleter, threshold: float = 0.5) -> Completer:
    """A trained mask completer as a completer (:func:`amodal.models.mask_completer.complete_mask`)."""
    return lambda image, visible_mask: complete_mask(image, visible_mask, model, threshold)


BASELINE_COMPLETERS: dict[str, Completer] = {"visible": visible_as_is, "convex_hull": convex_hull}


def score_completers(completers: dict[str, Completer], items: Iterable[dict], progress: bool = False) -> list[dict]:
    """Every completer on every item.

    Args:
        completers: ``{name: completer(image, M_vis) -> M̂_a}``.
        items: dicts with ``image`` ``(H, W, 3)``, ``visible_mask`` and ``amodal_mask``
            ``(H, W)`` bool, ``bucket`` and ``id`` (:mod:`amodal.data.mask_items`).

    Returns:
        one record per item: ``id``, ``bucket``, ``visible_ratio`` and, per completer name,
        ``{"hidden_iou": ..., "amodal_iou": ...}``.

    Raises:
        ValueError: a completer whose mask has another shape than the item's, or leaves out
            part of ``M_vis``.
    """
    records = []
    for item in tqdm(list(items), desc="masks", disable=not progress):
        visible, amodal = np.asarray(item["visible_mask"], bool), np.asarray(item["amodal_mask"], bool)
        record = {"id": item["id"], "bucket": item["bucket"],
                  "visible_ratio": float(visible.sum() / max(amodal.sum(), 1))}
        for name, completer in completers.items():
            predicted = np.asarray(completer(item["image"], visible), bool)
            if predicted.shape != visible.shape:
                raise ValueError(f"completer {name!r} gave a mask of shape {predicted.shape} for item {item['id']} "
                                 f"of shape {visible.shape}")
            if (visible & ~predicted).any():
                raise ValueError(f"completer {name!r} left out part of M_vis on item {item['id']}")
            record[name] = {"hidden_iou": hidden_iou(predicted, visible, amodal), "amodal_iou": amodal_iou(predicted, amodal)}
        records.append(record)
    return records


def _members(records: list[dict], group: str) -> list[dict]:
    return [r for r in records if group == "overall" or r["bucket"] == group]


def summarise_completion(records: list[dict], resamples: int = 2000) -> dict:
    """Means with 95 % bootstrap intervals: ``{completer: {group: {score: mean, score + "_ci": [low, high],
    "count": n}}}``, groups ``overall`` and each bucket present."""
    names = [k for k in records[0] if isinstance(records[0][k], dict)] if records else []
    summary = {}
    for name in names:
        summary[name] = {}
        for group in GROUPS:
            chosen = _members(records, group)
            if not chosen:
                continue
            row = {"count": len(chosen)}
            for score in SCORES:
                values = [r[name][score] for r in chosen]
                row[score] = float(np.mean(values))
                row[f"{score}_ci"] = list(bootstrap_ci(values, resamples))
            summary[name][group] = row
    return summary


def paired_gain(records: list[dict], name: str, against: str, score: str = "hidden_iou",
                resamples: int = 2000) -> dict:
    """Mean per-item difference ``name − against`` of ``score``, with its bootstrap interval, per group.

    Returns:
        ``{group: {"mean": ..., "ci": [low, high], "wins": share of items where name scores higher}}``.
    """
    gains = {}
    for group in GROUPS:
        chosen = _members(records, group)
        if not chosen:
            continue
        differences = np.array([r[name][score] - r[against][score] for r in chosen])
        gains[group] = {"mean": float(differences.mean()), "ci": list(bootstrap_ci(differences, resamples)),
                        "wins": float((differences > 0).mean())}
    return gains


def compare_with_baselines(model: MaskCompleter, items: Iterable[dict], name: str = "completer",
                           resamples: int = 2000, progress: bool = False) -> dict:
    """The model beside ``visible`` and ``convex_hull`` on the same items.

    Returns:
        ``{"summary": summarise_completion(...), "gain": {baseline: paired_gain(...)}, "records": [...]}``.
    """
    records = score_completers({**BASELINE_COMPLETERS, name: network_completer(model)}, items, progress)
    return {"summary": summarise_completion(records, resamples),
            "gain": {baseline: paired_gain(records, name, baseline, resamples=resamples) for baseline in BASELINE_COMPLETERS},
            "records": records}


def format_completion_table(summary: dict, groups: tuple[str, ...] = ("overall", "hard"),
                            score: str = "hidden_iou") -> str:
    """A markdown table: one row per completer, ``score`` mean [95 % interval] per group."""
    lines = ["| completer | " + " | ".join(f"{group} [95 % CI]" for group in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for name, rows in summary.items():
        cells = []
        for group in groups:
            row = rows.get(group)
            cells.append("—" if row is None else
                         f"{row[score]:.3f} [{row[score + '_ci'][0]:.3f}, {row[score + '_ci'][1]:.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
