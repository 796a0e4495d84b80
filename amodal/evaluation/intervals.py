"""How sure a mean over samples is: percentile bootstrap intervals for every metric.

An evaluation averages over samples, and a few hundred samples leave the mean uncertain.
:func:`bootstrap_ci` resamples the samples with replacement and reads the interval off
the resampled means; :func:`summary_with_ci` adds one such interval to every mean of an
evaluation's summary, per bucket.
"""
from __future__ import annotations

import numpy as np

from amodal.evaluation.scoring import summarise
from amodal.metrics import METRICS


def bootstrap_ci(values, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values`` (NaNs dropped).

    Samples are resampled with replacement ``resamples`` times; the interval is the
    ``(1 − level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled means. With fewer
    than two values it is ``(nan, nan)``.
    """
    values = np.asarray([v for v in values if not np.isnan(v)], dtype=np.float64)
    if values.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (resamples, values.size))].mean(1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def summary_with_ci(records: list[dict], resamples: int = 2000) -> dict:
    """:func:`summarise` plus a 95 % bootstrap interval for every mean: ``{variant: {group:
    {metric: mean, metric + "_ci": [low, high], "count": n}}}``."""
    summary = summarise(records)
    for variant, groups in summary.items():
        for group, row in groups.items():
            chosen = [r for r in records if group == "overall" or r["bucket"] == group]
            for name in METRICS:
                row[f"{name}_ci"] = list(bootstrap_ci([r[variant][name] for r in chosen if variant in r], resamples))
    return summary
