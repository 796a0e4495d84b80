"""Evaluation runs: a predictor over items, scored on the hidden region by the paper's protocol (§5.1).

Each sample is scored by :func:`amodal.metrics.evaluate_sample` (raw and aligned to ``D_o``
on ``M_vis``, hidden pixels only, +1e-5 offset); the records are averaged over samples per
bucket by :func:`amodal.metrics.aggregate_metrics`. Predictors are those of
:mod:`amodal.evaluation.predictors`.
"""
from __future__ import annotations

from typing import Iterable

from tqdm.auto import tqdm

from amodal.evaluation.predictors import Predictor, item_map
from amodal.metrics import aggregate_metrics, evaluate_sample


def evaluate_items(predictor: Predictor, items: Iterable[dict], progress: bool = False,
                   batch_size: int = 1) -> list[dict]:
    """Score ``predictor`` on every item: one record per sample (id, bucket, ratio, raw, aligned).

    With ``batch_size > 1`` and a predictor that has ``.batch`` (:func:`model_predictor`),
    runs of consecutive items of one size go through the network together; the records
    are the same as one by one (up to the network's batch-size rounding, ~1e-7).
    """
    items = list(items)
    records = []
    bar = tqdm(total=len(items), desc="evaluate", disable=not progress)
    start = 0
    while start < len(items):
        chunk = [items[start]]
        if batch_size > 1 and hasattr(predictor, "batch"):
            shape = items[start]["image"].shape
            while len(chunk) < batch_size and start + len(chunk) < len(items) \
                    and items[start + len(chunk)]["image"].shape == shape:
                chunk.append(items[start + len(chunk)])
            predictions = predictor.batch(chunk)
        else:
            predictions = [predictor(chunk[0])]
        for item, prediction in zip(chunk, predictions):
            record = evaluate_sample(prediction, item_map(item, "target_depth"), item_map(item, "amodal_mask"),
                                     item_map(item, "visible_mask"), item_map(item, "observed_depth"))
            records.append({"id": item.get("id"), **record})
        start += len(chunk)
        bar.update(len(chunk))
    bar.close()
    return records


def summarise(records: list[dict]) -> dict:
    """Means per bucket and overall (see :func:`amodal.metrics.aggregate_metrics`)."""
    return aggregate_metrics(records)
