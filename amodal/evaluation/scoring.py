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
    """An Amodal-DAV2 run on the item as it is (its sides must suit the model).

    The predictor also has ``.batch(items) -> [prediction, ...]``, one forward pass for
    items of one size, which :func:`evaluate_items` uses when given a ``batch_size``.
    """
    device = next(model.parameters()).device
    needs_visible = getattr(model, "needs_visible_mask", False)  # a fill_residual Amodal-DAV2
    keys = ("image", "amodal_mask", "observed_depth") + (("visible_mask",) if needs_visible else ())

    @torch.no_grad()
    def batch(items):
        model.eval()
        inputs = [torch.stack([item[k] for item in items]).to(device).float() for k in keys]
        return list(model(*inputs)[:, 0].float().cpu().numpy())

    def predict(item):
        return batch([item])[0]

    predict.batch = batch
    return predict


def depthfm_predictor(model: torch.nn.Module, samples: int = 4, steps: int = 4, seed: int = 0) -> Predictor:
    """An Amodal-DepthFM: the mean of ``samples`` draws (``steps`` Euler steps each), every draw
    aligned to ``D_o`` on ``M_vis`` as at the paper's inference. The noise of the ``k``-th call comes
    from a generator seeded by ``seed`` and ``k``, so a rerun over the same items in the same
    order gives the same numbers.
    """
    device = next(model.parameters()).device
    counter = iter(range(10**12))

    @torch.no_grad()
    def predict(item):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + next(counter))
        maps = {k: item[k][None].to(device).float() for k in ("image", "amodal_mask", "observed_depth", "visible_mask")}
        out = model.sample(maps["image"], amodal_mask=maps["amodal_mask"], observed_depth=maps["observed_depth"],
                           visible_mask=maps["visible_mask"], n=samples, steps=steps, generator=generator)
        return out.mean[0, 0].clamp(0, 1).float().cpu().numpy()

    return predict


def base_depth_predictor(model: torch.nn.Module) -> Predictor:
    """Depth Anything V2 with no guidance: its normalised disparity of the composite, the
    baseline of a plain relative-depth model (it sees the occluder, not the object behind)."""
    from amodal.adiw.depth import normalise_disparity

    def predict(item):
        rgb = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        return normalise_disparity(model.infer_image(rgb)).astype(np.float32)

    return predict


def evaluate_items(predictor: Predictor, items: Iterable[dict], progress: bool = False,
                   batch_size: int = 1) -> list[dict]:
    """Score ``predictor`` on every item: one record per sample (id, bucket, ratio, raw, aligned).

    With ``batch_size > 1`` and a predictor that has ``.batch`` (:func:`model_predictor`),
    runs of consecutive items of one size go through the network together; the records
    are the same as one by one (up to the network's batch-size rounding, ~1e-7).
    """
    from tqdm.auto import tqdm

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
            record = evaluate_sample(prediction, _plain(item, "target_depth"), _plain(item, "amodal_mask"),
                                     _plain(item, "visible_mask"), _plain(item, "observed_depth"))
            records.append({"id": item.get("id"), **record})
        start += len(chunk)
        bar.update(len(chunk))
    bar.close()
    return records


def summarise(records: list[dict]) -> dict:
    """Means per bucket and overall (see :func:`amodal.metrics.aggregate_metrics`)."""
    return aggregate_metrics(records)


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
    from amodal.metrics import METRICS

    summary = summarise(records)
    for variant, groups in summary.items():
        for group, row in groups.items():
            chosen = [r for r in records if group == "overall" or r["bucket"] == group]
            for name in METRICS:
                row[f"{name}_ci"] = list(bootstrap_ci([r[variant][name] for r in chosen if variant in r], resamples))
    return summary


def format_ci_table(summary: dict, variant: str = "raw", name: str = "this run") -> str:
    """RMSE×100 and δ1 % with their 95 % intervals per bucket, and the paper's Table 1 below."""
    from amodal.metrics import BUCKETS, PAPER_TABLE

    lines = [f"{name} ({variant}); 95 % bootstrap intervals over samples",
             f"{'bucket':<8} {'n':>5} {'RMSE×100':>9} {'[95 % CI]':>17} {'δ1 %':>7} {'[95 % CI]':>17}"]
    for group in ("overall", *BUCKETS):
        row = summary[variant][group]
        r_lo, r_hi = (100 * x for x in row["rmse_ci"])
        d_lo, d_hi = (100 * x for x in row["delta1_ci"])
        lines.append(f"{group:<8} {row['count']:>5d} {100 * row['rmse']:>9.3f} [{r_lo:>7.3f}, {r_hi:>7.3f}] "
                     f"{100 * row['delta1']:>7.2f} [{d_lo:>6.2f}, {d_hi:>6.2f}]")
    lines.append("")
    lines.append("the paper's Table 1 (ADIW test set, hidden region, overall):")
    for model, row in PAPER_TABLE.items():
        lines.append(f"  {model:<26} RMSE×100 {row['rmse']:>6.3f}   δ1 % {row['delta1']:>6.2f}")
    return "\n".join(lines)


def write_report(records: list[dict], output, name: str = "this run", resamples: int = 2000) -> dict:
    """Write ``samples.csv`` (one row per sample), ``summary.json`` and ``table.txt`` into ``output``.

    Returns:
        The summary (see :func:`summary_with_ci`).
    """
    import csv
    import io
    from pathlib import Path

    from amodal.utils.atomic import atomic_write_json, atomic_write_text
    from amodal.metrics import METRICS

    output = Path(output)
    summary = summary_with_ci(records, resamples)
    columns = ["id", "bucket", "visible_ratio"] + [f"{v}_{m}" for v in ("raw", "aligned") for m in METRICS] + ["aligned_error"]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    for r in records:
        row = {"id": r.get("id"), "bucket": r["bucket"], "visible_ratio": r["visible_ratio"],
               "aligned_error": r.get("aligned_error", "")}
        row.update({f"{v}_{m}": r[v][m] for v in ("raw", "aligned") for m in METRICS})
        writer.writerow(row)
    atomic_write_text(output / "samples.csv", text.getvalue())
    atomic_write_json(output / "summary.json", {"name": name, "samples": len(records), "summary": summary},
                      indent=1, sort_keys=True, default=float)
    table = format_ci_table(summary, "raw", name) + "\n\n" + format_ci_table(summary, "aligned", name).split("\n\nthe paper")[0]
    atomic_write_text(output / "table.txt", table + "\n")
    return summary


def format_comparison(summaries: dict, variant: str = "raw") -> str:
    """One row per model: hidden RMSE×100 and δ1 % overall and in the hard bucket, with 95 % intervals."""
    lines = [f"{'model':<40} {'RMSE×100':>9} {'[95 % CI]':>17} {'hard':>7} {'[95 % CI]':>17} {'δ1 %':>7}",]
    for name, summary in summaries.items():
        overall, hard = summary[variant]["overall"], summary[variant]["hard"]
        ci = lambda row: "[{:>7.3f}, {:>7.3f}]".format(*(100 * x for x in row["rmse_ci"]))
        lines.append(f"{name:<40} {100 * overall['rmse']:>9.3f} {ci(overall):>17} {100 * hard['rmse']:>7.3f} "
                     f"{ci(hard):>17} {100 * overall['delta1']:>7.2f}")
    return "\n".join(lines)


def write_comparison(summaries: dict, output, command: str = "") -> None:
    """``comparison.json`` (every model's summary, the command) and ``comparison.txt`` (:func:`format_comparison`)."""
    from pathlib import Path

    from amodal.utils.atomic import atomic_write_json, atomic_write_text

    output = Path(output)
    atomic_write_json(output / "comparison.json", {"command": command, "models": summaries}, indent=1, default=float)
    atomic_write_text(output / "comparison.txt", format_comparison(summaries) + "\n")
