"""A run's training curve from its ``log.csv`` and ``validation.csv``: read, smooth, plot."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def read_run(folder: str | Path) -> dict[str, np.ndarray]:
    """The columns of ``folder/log.csv`` (``step``, ``loss``, ``lr``, ...) and of
    ``validation.csv`` prefixed ``val_`` (``val_step``, ``val_hidden_rmse_x100``, ...), as float arrays.

    Raises:
        FileNotFoundError: no ``log.csv``.
    """
    folder = Path(folder)
    if not (folder / "log.csv").is_file():
        raise FileNotFoundError(f"{folder} has no log.csv (not a training run folder)")
    out: dict[str, np.ndarray] = {}
    for name, prefix in (("log.csv", ""), ("validation.csv", "val_")):
        if not (folder / name).is_file():
            continue
        with open(folder / name, newline="") as handle:
            rows = list(csv.DictReader(handle))
        for key in (rows[0] if rows else {}):
            out[prefix + key] = np.array([float(r[key]) for r in rows])
    return out


def smooth(values: np.ndarray, window: int = 50) -> np.ndarray:
    """Trailing moving average over ``window`` values (shorter at the start), same length."""
    values = np.asarray(values, np.float64)
    if window < 1:
        raise ValueError(f"window must be ≥ 1, got {window}")
    sums = np.cumsum(np.concatenate([[0.0], values]))
    index = np.arange(1, values.size + 1)
    start = np.maximum(index - window, 0)
    return (sums[index] - sums[start]) / (index - start)


def plot_run(folder: str | Path, ax=None, window: int = 50, title: str | None = None):
    """Loss (raw, faint, and smoothed) against step, with the validation error on a second axis."""

    run = read_run(folder)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.plot(run["step"], run["loss"], color="C0", alpha=0.25, lw=0.8)
    ax.plot(run["step"], smooth(run["loss"], window), color="C0", label=f"loss (mean of {window})")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="C0")
    metric = next((k for k in run if k.startswith("val_") and k != "val_step"), None)
    if metric is not None:
        twin = ax.twinx()
        twin.plot(run["val_step"], run[metric], "o-", color="C3")
        twin.set_ylabel(metric[4:].replace("_", " ") + " (held out)", color="C3")
    ax.set_title(title or Path(folder).name)
    return ax
