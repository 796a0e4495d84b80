r"""The paper's evaluation protocol (§5.1 and Table 1), as the official code computes it.

Per sample, on the **hidden** pixels ``M_inv = M_a ∧ ¬M_vis`` only, with prediction
``p`` and ground truth ``g`` both normalised disparity in [0, 1] and shifted by
``+1e-5`` (so that logs and ratios stay finite):

- RMSE   = sqrt(mean((p − g)²))
- δ1     = mean(max(p/g, g/p) < 1.25)    (δ2, δ3: thresholds 1.25², 1.25³)
- AbsRel = mean(|p − g| / g)
- log10  = mean(|log10 p − log10 g|)

and the rest of the official ``metric.py`` (the paper reports RMSE and δ1):

- SqRel      = mean((p − g)² / g)
- RMSE-log   = sqrt(mean((ln p − ln g)²))
- iRMSE      = sqrt(mean((1/p − 1/g)²))
- SILog-RMSE = 100 · sqrt(mean(d²) − mean(d)²),  d = ln p − ln g

Each metric is averaged over samples (not pixels); a sample whose mask is empty has
no value and is skipped. Samples fall into buckets by visible ratio
``r = |M_vis| / |M_a|``: easy r > 0.75, mid 0.5 < r ≤ 0.75, hard r ≤ 0.5.

The "aligned" variant first fits the prediction to the observed depth ``D_o`` on
``M_vis`` by least squares (:mod:`amodal.align`). We then clip it to [0, 1]: an affine
map can leave the unit range, and the official code, which does not clip, then takes
logs and ratios of negative numbers (NaN log10, and a negative ratio that δ1 counts
as a hit). Inside [0, 1] both agree.

The paper reports RMSE ×100 and δ1 in percent; :func:`paper_units` converts.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from amodal.align import align

OFFSET = 1e-5
DELTA1_THRESHOLD = 1.25
METRICS = ("rmse", "delta1", "absrel", "log10", "sqrel", "rmse_log", "delta2", "delta3", "irmse", "silog_rmse")
BUCKETS = ("easy", "mid", "hard")
# The paper's buckets by visible ratio r = |M_vis| / |M_a|: each holds low < r ≤ high, and
# "hard" also r = 0 (paper §5.1: easy r > 0.75, mid 0.5 < r ≤ 0.75, hard r ≤ 0.5).
BUCKET_BOUNDS = {"easy": (0.75, 1.0), "mid": (0.5, 0.75), "hard": (0.0, 0.5)}

# Table 1 of the paper (ADIW test set, hidden region): RMSE ×100, δ1 in %. The paper's
# numbers, printed beside every evaluation's own (amodal.evaluation.tables.format_ci_table); this
# repository has not reproduced them yet.
PAPER_TABLE = {
    "Amodal-DAV2-S": {"rmse": 3.682, "delta1": 93.251},
    "Amodal-DAV2-B": {"rmse": 3.578, "delta1": 93.590},
    "Amodal-DAV2-L": {"rmse": 3.418, "delta1": 94.179},
    "Amodal-DepthFM (raw)": {"rmse": 5.410, "delta1": 88.353},
    "Amodal-DepthFM (aligned)": {"rmse": 4.645, "delta1": 92.295},
    "pix2gestalt (aligned)": {"rmse": 5.114, "delta1": 88.717},
    "Sekkat et al. (aligned)": {"rmse": 5.194, "delta1": 88.367},
}


def _as_float64(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _squeeze_map(x, name: str) -> np.ndarray:
    """(H, W), (1, H, W) or (1, 1, H, W) → (H, W)."""
    arr = np.asarray(x)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be one map (H, W), got shape {tuple(np.shape(x))}")
    return arr


def sample_metrics(pred, target, mask) -> dict[str, float]:
    """RMSE, δ1, AbsRel and log10 of one sample on ``mask`` (raw units).

    Args:
        pred: predicted normalised disparity, ``(H, W)`` (or ``(1, H, W)``, ``(1, 1, H, W)``),
            numpy or torch, values ≥ 0 on the mask.
        target: ground-truth normalised disparity, same shape, values ≥ 0 on the mask.
        mask: where to evaluate (for the paper: the hidden region), same shape.

    Returns:
        every name of :data:`METRICS` as a float; all NaN when the mask is empty
        (such a sample is skipped by :func:`aggregate_metrics`).

    Raises:
        ValueError: shapes differ, or NaN/inf/negative values inside the mask.
    """
    p = _squeeze_map(_as_float64(pred), "pred")
    g = _squeeze_map(_as_float64(target), "target")
    m = _squeeze_map(_as_float64(mask), "mask").astype(bool)
    if p.shape != g.shape or p.shape != m.shape:
        raise ValueError(f"pred, target and mask must have the same shape, got {p.shape}, {g.shape}, {m.shape}")
    if not m.any():
        return {name: math.nan for name in METRICS}
    p, g = p[m], g[m]
    for name, values in (("pred", p), ("target", g)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} has NaN or inf inside the mask")
        if (values < 0).any():
            raise ValueError(f"{name} has negative values inside the mask (min {values.min():.3g}); "
                             "metrics are defined on normalised disparity in [0, 1]")
    p = p + OFFSET
    g = g + OFFSET
    ratio = np.maximum(p / g, g / p)
    log_difference = np.log(p) - np.log(g)
    return {
        "rmse": float(np.sqrt(np.mean((p - g) ** 2))),
        "delta1": float(np.mean(ratio < DELTA1_THRESHOLD)),
        "absrel": float(np.mean(np.abs(p - g) / g)),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
        "sqrel": float(np.mean((p - g) ** 2 / g)),
        "rmse_log": float(np.sqrt(np.mean(log_difference**2))),
        "delta2": float(np.mean(ratio < DELTA1_THRESHOLD**2)),
        "delta3": float(np.mean(ratio < DELTA1_THRESHOLD**3)),
        "irmse": float(np.sqrt(np.mean((1 / p - 1 / g) ** 2))),
        # max(·, 0): the variance of one value can round to a tiny negative number
        "silog_rmse": float(100 * np.sqrt(max(np.mean(log_difference**2) - np.mean(log_difference) ** 2, 0.0))),
    }


def visible_ratio(amodal_mask, visible_mask) -> float:
    """``|M_vis ∧ M_a| / |M_a|``; raises ``ValueError`` on an empty amodal mask."""
    a = _as_float64(amodal_mask).astype(bool)
    v = _as_float64(visible_mask).astype(bool)
    total = int(a.sum())
    if total == 0:
        raise ValueError("the amodal mask is empty")
    return float((a & v).sum()) / total


def visible_ratio_bucket(ratio: float) -> str:
    """The bucket of :data:`BUCKET_BOUNDS` that holds ``ratio``: ``"easy"`` (r > 0.75),
    ``"mid"`` (0.5 < r ≤ 0.75) or ``"hard"`` (r ≤ 0.5)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"visible ratio must lie in [0, 1], got {ratio}")
    for bucket in BUCKETS:
        low, high = BUCKET_BOUNDS[bucket]
        if low < ratio <= high:
            return bucket
    return "hard"  # r = 0: nothing of the target visible


def evaluate_sample(pred, target_depth, amodal_mask, visible_mask, observed_depth) -> dict:
    """Raw and aligned metrics of one prediction on its hidden region, with its bucket.

    Args:
        pred: predicted normalised disparity of the scene or object, ``(H, W)``.
        target_depth: ground truth, ``(H, W)``.
        amodal_mask: ``M_a``, ``(H, W)``.
        visible_mask: ``M_vis``, ``(H, W)``.
        observed_depth: ``D_o``, ``(H, W)``; the aligned variant fits ``pred`` to it on ``M_vis``.

    Returns:
        ``{"bucket", "visible_ratio", "raw": {...}, "aligned": {...}}``. When the fit is
        undetermined — a fully hidden target (no visible pixel) or a prediction constant on
        ``M_vis`` — the aligned metrics are NaN (skipped by :func:`aggregate_metrics`) and
        ``"aligned_error"`` says why; the raw metrics are still computed.
    """
    p = _squeeze_map(_as_float64(pred), "pred")
    a = _squeeze_map(_as_float64(amodal_mask), "amodal_mask").astype(bool)
    v = _squeeze_map(_as_float64(visible_mask), "visible_mask").astype(bool) & a
    hidden = a & ~v
    ratio = visible_ratio(a, v)
    record = {"bucket": visible_ratio_bucket(ratio), "visible_ratio": ratio, "raw": sample_metrics(p, target_depth, hidden)}
    try:
        aligned = np.clip(align(p, _squeeze_map(_as_float64(observed_depth), "observed_depth"), v), 0.0, 1.0)
    except ValueError as error:  # too few visible pixels, or a prediction constant on them
        record["aligned"] = {name: math.nan for name in METRICS}
        record["aligned_error"] = str(error)
        return record
    record["aligned"] = sample_metrics(aligned, target_depth, hidden)
    return record


def aggregate_metrics(samples: Iterable[Mapping]) -> dict:
    """Mean of each metric over samples, overall and per bucket.

    Args:
        samples: records with a ``"bucket"`` key and one or more variants, each a dict of
            metrics (as :func:`evaluate_sample` returns), or flat records with the metric
            keys themselves (variant ``"raw"``).

    Returns:
        ``{variant: {"overall" | "easy" | "mid" | "hard": {metric: mean, "count": n}}}``;
        samples with a NaN metric (empty mask) are skipped for that metric; a bucket with no
        sample has NaN means and count 0.
    """
    sums: dict = {}
    for record in samples:
        variants = {k: v for k, v in record.items() if isinstance(v, Mapping)}
        if not variants:
            variants = {"raw": record}
        bucket = record.get("bucket", None)
        if bucket is not None and bucket not in BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}; expected one of {BUCKETS}")
        for variant, values in variants.items():
            table = sums.setdefault(variant, {b: {m: [0.0, 0] for m in METRICS} for b in ("overall", *BUCKETS)})
            for name in METRICS:
                value = float(values.get(name, math.nan))  # a record may carry only some metrics
                if math.isnan(value):
                    continue
                for group in ("overall", bucket):
                    if group is not None:
                        table[group][name][0] += value
                        table[group][name][1] += 1
    result = {}
    for variant, table in sums.items():
        result[variant] = {}
        for group, per_metric in table.items():
            row = {m: (s / n if n else math.nan) for m, (s, n) in per_metric.items()}
            row["count"] = max(n for _, n in per_metric.values())
            result[variant][group] = row
    return result


def paper_units(row: Mapping) -> dict[str, float]:
    """RMSE ×100 and δ1 in % (the paper's Table 1 units); AbsRel and log10 unchanged."""
    out = dict(row)
    if "rmse" in out:
        out["rmse"] = 100.0 * out["rmse"]
    if "delta1" in out:
        out["delta1"] = 100.0 * out["delta1"]
    return out


def format_table(aggregated: Mapping, variant: str = "raw") -> str:
    """A plain-text table of one variant in the paper's units, one row per bucket."""
    lines = [f"{'bucket':<8} {'n':>5} {'RMSE×100':>9} {'δ1 %':>7} {'AbsRel':>7} {'log10':>7}"]
    for group in ("overall", *BUCKETS):
        row = paper_units(aggregated[variant][group])
        lines.append(
            f"{group:<8} {row['count']:>5d} {row['rmse']:>9.3f} {row['delta1']:>7.3f} "
            f"{row['absrel']:>7.4f} {row['log10']:>7.4f}"
        )
    return "\n".join(lines)
