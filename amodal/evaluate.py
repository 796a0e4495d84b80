"""Evaluation runs: a predictor over items, scored on the hidden region by the paper's protocol (§5.1).

A *predictor* maps one item (a dict as the datasets give: ``image`` (3, H, W),
``amodal_mask``, ``visible_mask``, ``observed_depth``, ``target_depth`` (1, H, W)) to a
``(H, W)`` prediction of normalised disparity. :func:`fill_predictor` turns a baseline of
:mod:`amodal.baselines` into one, :func:`model_predictor` an Amodal-DAV2. Each sample is
scored by :func:`amodal.metrics.evaluate_sample` (raw and aligned, hidden pixels only,
+1e-5 offset) and the records are averaged over samples per bucket by
:func:`amodal.metrics.aggregate_metrics`.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from amodal.metrics import aggregate_metrics, evaluate_sample

Predictor = Callable[[dict], np.ndarray]


def _plain(item: dict, key: str) -> np.ndarray:
    value = item[key]
    return (value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)).reshape(value.shape[-2:])


def fill_predictor(fill) -> Predictor:
    """A baseline ``fill(image, amodal_mask, observed_depth, visible_mask)`` as a predictor."""
    def predict(item):
        return fill(None, _plain(item, "amodal_mask"), _plain(item, "observed_depth"), _plain(item, "visible_mask"))

    return predict


def model_predictor(model: torch.nn.Module) -> Predictor:
    """An Amodal-DAV2 run on the item as it is (its sides must suit the model)."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def predict(item):
        model.eval()
        inputs = [item[k][None].to(device).float() for k in ("image", "amodal_mask", "observed_depth")]
        return model(*inputs)[0, 0].float().cpu().numpy()

    return predict


def evaluate_items(predictor: Predictor, items: Iterable[dict], progress: bool = False) -> list[dict]:
    """Score ``predictor`` on every item: one record per sample (id, bucket, ratio, raw, aligned)."""
    from tqdm.auto import tqdm

    records = []
    for item in tqdm(items, desc="evaluate", disable=not progress):
        record = evaluate_sample(predictor(item), _plain(item, "target_depth"), _plain(item, "amodal_mask"),
                                 _plain(item, "visible_mask"), _plain(item, "observed_depth"))
        records.append({"id": item.get("id"), **record})
    return records


def summarise(records: list[dict]) -> dict:
    """Means per bucket and overall (see :func:`amodal.metrics.aggregate_metrics`)."""
    return aggregate_metrics(records)
