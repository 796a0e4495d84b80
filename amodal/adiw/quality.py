"""How good are ADIW's pseudo-labels? Measured where the hidden depth is known.

Nobody can check ADIW's labels on photos: no sensor saw behind the pasted occluder.
On synthetic occlusions (:mod:`amodal.adiw.synthetic`) we can. For each sample we
build the label exactly as the photo pipeline does — ``D_o`` and ``D_b`` from a depth
"model", least-squares fit, paste, clip — and score it against the exact hidden depth
with the paper's metrics on the hidden region ``M_inv`` (:func:`amodal.metrics.sample_metrics`).

Depth models compared (:class:`amodal.adiw.depth.OracleDepth` settings):

- ``exact``: the true normalised disparity. The label should then be exact up to
  rounding, since ``D_o`` and ``D_b`` differ by an affine map on the unchanged pixels.
- ``affine+noise``: per-image unknown affine map, smooth noise (2 % of the range)
  and pixel noise (1 %), what a relative-depth model gives at best.
- ``gamma+noise``: the same plus a per-image gamma in [0.8, 1.25] — relative-depth
  models are not affine-consistent between two images, and this is what the fit
  cannot undo.

The reference ``D_o floor`` row scores ``D_o`` itself against the truth on the
target's *visible* pixels: the label cannot be better than the depth it is built from.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from amodal.adiw.composite import BUCKET_RANGES
from amodal.adiw.depth import OracleDepth
from amodal.adiw.synthetic import synth_occlusion, synth_sample
from amodal.metrics import aggregate_metrics, format_table, sample_metrics, visible_ratio_bucket

DEPTH_MODELS = {
    "exact": {},
    "affine+noise": {"noise_std": 0.01, "smooth_noise_std": 0.02},
    "gamma+noise": {"noise_std": 0.01, "smooth_noise_std": 0.02, "gamma_range": (0.8, 1.25)},
}


def label_quality(
    n: int = 200,
    size: int = 128,
    models: Sequence[str] = tuple(DEPTH_MODELS),
    fits: Sequence[str] = ("visible", "ring"),
    seed: int = 0,
    textures: Sequence[np.ndarray] | None = None,
) -> dict:
    """Score ADIW pseudo-labels against the exact hidden depth on ``n`` synthetic samples.

    The samples cycle through the easy, mid and hard visible-ratio ranges, so the
    buckets are balanced. Every (model, fit) pair sees the same ``n`` occlusions.

    Args:
        n: number of synthetic occlusions.
        size: image side.
        models: keys of :data:`DEPTH_MODELS`.
        fits: ``"visible"`` (paper) and/or ``"ring"``.
        seed: seeds scenes and depth-model draws.
        textures: passed to the scene generator.

    Returns:
        ``{"labels": {(model, fit): aggregated}, "floor": {model: aggregated},
        "failures": {(model, fit): count}, "n": n}`` where ``aggregated`` is :func:`amodal.metrics.aggregate_metrics`' output
        (variant ``"raw"``), and ``failures`` counts samples whose fit region gave no
        scale (constant ``D_b`` there), left out of that row.
    """
    buckets = list(BUCKET_RANGES)
    occlusions = [synth_occlusion(seed * 100003 + i, size, BUCKET_RANGES[buckets[i % 3]], textures) for i in range(n)]
    labels, floor, failures = {}, {}, {}
    for model in models:
        oracle = OracleDepth(seed=seed, **DEPTH_MODELS[model])
        for fit in fits:
            records = []
            failures[(model, fit)] = 0
            for occ in occlusions:
                try:
                    sample = synth_sample(occ, oracle, fit=fit)
                except ValueError:
                    # D_b constant on the fit region (a fronto-parallel face seen alone):
                    # the scale is undetermined; the builder skips such samples too
                    failures[(model, fit)] += 1
                    continue
                finally:
                    oracle.forget()
                record = sample_metrics(sample.target_depth, occ.exact_target, sample.hidden_mask)
                record["bucket"] = visible_ratio_bucket(occ.visible_ratio)
                records.append(record)
            labels[(model, fit)] = aggregate_metrics(records)
        floor_records = []
        for occ in occlusions:
            oracle.remember(occ.composite.image, 1.0 / occ.composite.depth)
            observed = oracle.predict([occ.composite.image])[0]
            oracle.forget()
            record = sample_metrics(observed, occ.exact_target, occ.visible_mask)
            record["bucket"] = visible_ratio_bucket(occ.visible_ratio)
            floor_records.append(record)
        floor[model] = aggregate_metrics(floor_records)
    return {"labels": labels, "floor": floor, "failures": failures, "n": n}


def quality_table(result: dict) -> str:
    """The label-quality result as a plain-text table (RMSE ×100, δ1 %; overall and per bucket)."""
    lines = [f"{'depth model':<14} {'fit':<8} {'region':<7} {'fail':>4} {'n':>4} {'RMSE×100':>9} {'δ1 %':>7} {'AbsRel':>7}  "
             f"{'easy':>6} {'mid':>6} {'hard':>6}  (RMSE×100 per bucket)"]

    def row(model, fit, region, agg, failed="-"):
        o = agg["raw"]["overall"]
        per = [agg["raw"][b]["rmse"] * 100 for b in ("easy", "mid", "hard")]
        return (f"{model:<14} {fit:<8} {region:<7} {failed:>4} {o['count']:>4} {o['rmse'] * 100:>9.3f} {o['delta1'] * 100:>7.2f} "
                f"{o['absrel']:>7.4f}  {per[0]:>6.2f} {per[1]:>6.2f} {per[2]:>6.2f}")

    for (model, fit), agg in result["labels"].items():
        lines.append(row(model, fit, "hidden", agg, str(result["failures"][(model, fit)])))
    for model, agg in result["floor"].items():
        lines.append(row(model, "D_o", "visible", agg))
    return "\n".join(lines)


__all__ = ["DEPTH_MODELS", "label_quality", "quality_table", "format_table"]
