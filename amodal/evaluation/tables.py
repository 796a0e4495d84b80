"""An evaluation's files and tables: per-sample CSV, summary JSON, and RMSE/δ1 beside the paper's Table 1.

``python -m amodal evaluate`` writes, per model, ``samples.csv`` (every metric, raw and
aligned, per sample), ``summary.json`` (means per bucket with 95 % intervals) and
``table.txt`` (:func:`format_ci_table`); with several models also ``comparison.json`` and
``comparison.txt`` (:func:`format_comparison`). Every file is written atomically.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from amodal.evaluation.intervals import summary_with_ci
from amodal.metrics import BUCKETS, METRICS, PAPER_TABLE
from amodal.utils.atomic import atomic_write_json, atomic_write_text


def format_ci_table(summary: dict, variant: str = "raw", name: str = "this run") -> str:
    """RMSE×100 and δ1 % with their 95 % intervals per bucket, and the paper's Table 1 below."""
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


def write_evaluation(records: list[dict], output, name: str = "this run", resamples: int = 2000) -> dict:
    """Write ``samples.csv`` (one row per sample), ``summary.json`` and ``table.txt`` into ``output``.

    Returns:
        The summary (see :func:`summary_with_ci`).
    """
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
    output = Path(output)
    atomic_write_json(output / "comparison.json", {"command": command, "models": summaries}, indent=1, default=float)
    atomic_write_text(output / "comparison.txt", format_comparison(summaries) + "\n")
