"""The evaluation explorer's logic, free of widgets (notebook 07; the wiring is :mod:`amodal.app.widgets`).

What a person looks at when judging an amodal depth model one sample at a time
(the metrics are the paper's, §5.1, on the hidden region):

- **Which samples.** ``python -m amodal evaluate`` writes one row per sample to
  ``samples.csv`` (:func:`amodal.evaluation.tables.write_evaluation`). :class:`SampleTable` reads it, or
  the records of :func:`amodal.evaluation.scoring.evaluate_items`, keeps one bucket and sorts by a
  metric, so that the worst samples come first.
- **Where.** The glossary's masks over the image: ``M_a`` as an outline, ``M_vis``,
  ``M_inv = M_a ∧ ¬M_vis`` and the occluder tinted (:func:`overlay`).
- **How far off.** ``D_o``, the target and the prediction share one colour scale
  ``[lo, hi]`` (the 1st and 99th percentiles of the three maps together, :func:`depth_scale`);
  the absolute error on ``M_a`` is drawn on ``[0, hi − lo]``, so a colour step is the same
  depth difference in all four panels. Errors of a few hundredths then look alike (dark);
  ``error_scale="stretch"`` draws them on ``[0, their 99th percentile]`` instead.
- **Along a line.** A row (or column) through the hidden region, by default the one with
  the most hidden pixels (:func:`line_through_hidden`): truth, prediction and every fill of
  :mod:`amodal.baselines` sampled along it (:func:`cross_section`, bilinear), the hidden
  stretch shaded. There a fill goes flat or straight and a model has to bend.
- **In 3-D.** The object's pixels as points, visible and hidden apart
  (:func:`object_points`, the camera of :func:`amodal.export.point_cloud`).

Items are dicts as the datasets give them: ``image`` (3, H, W) in [0, 1];
``amodal_mask``, ``visible_mask``, ``observed_depth``, ``target_depth`` (1, H, W); ``bucket``
and ``id``; optionally ``occluder_mask`` (1, H, W).
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from scipy.ndimage import map_coordinates

from amodal.app.figures import object_points
from amodal.baselines import BASELINES
from amodal.evaluation.predictors import fill_predictor, model_predictor
from amodal.evaluation.scoring import evaluate_items
from amodal.models.flow_matching import ensemble_statistics

EXPLORER_SEED = 99  # the explorer's synthetic scenes: another seed than training (recipes) and evaluation (2026)
TEXT_COLUMNS = ("id", "bucket", "aligned_error")


# ----------------------------------------------------------------------------- which samples
def read_samples_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of an evaluation's ``samples.csv``; numbers as floats (an empty cell is NaN).

    Raises:
        FileNotFoundError: no such file (say which evaluation folder to pass).
        ValueError: a file without the ``id`` and ``bucket`` columns.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "samples.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no samples.csv at {path}; pass the --output folder of `python -m amodal evaluate`")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"id", "bucket"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: not an evaluation's samples.csv (columns {reader.fieldnames}, need id and bucket)")
        return [{k: (v if k in TEXT_COLUMNS else (float(v) if v != "" else math.nan)) for k, v in row.items()}
                for row in reader]


def rows_from_records(records: Iterable[Mapping]) -> list[dict]:
    """Records of :func:`amodal.evaluation.scoring.evaluate_items` as rows with ``samples.csv``'s columns."""
    rows = []
    for record in records:
        row = {"id": record["id"], "bucket": record["bucket"], "visible_ratio": record["visible_ratio"]}
        for variant in ("raw", "aligned"):
            row.update({f"{variant}_{name}": value for name, value in record[variant].items()})
        rows.append(row)
    return rows


class SampleTable:
    """Per-sample scores: filter by bucket, sort by a metric.

    Args:
        rows: dicts with ``id``, ``bucket`` and numeric columns (``raw_rmse``, ...).
    """

    def __init__(self, rows: Iterable[Mapping]):
        self.rows = {str(row["id"]): dict(row) for row in rows}

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "SampleTable":
        return cls(read_samples_csv(path))

    @property
    def metrics(self) -> list[str]:
        """The numeric columns, in the file's order."""
        first = next(iter(self.rows.values()), {})
        return [k for k, v in first.items() if k not in TEXT_COLUMNS and isinstance(v, (int, float))]

    def select(self, bucket: str = "all", sort_by: str | None = None, worst_first: bool = True) -> list[str]:
        """Ids of one bucket (``"all"``: every one), sorted by ``sort_by``.

        "Worst" is the larger value, except for the δ metrics, where it is the smaller.
        Rows whose value is NaN come last; ties keep the table's order.
        """
        ids = [i for i, row in self.rows.items() if bucket == "all" or row["bucket"] == bucket]
        if sort_by is None:
            return ids
        if sort_by not in self.metrics:
            raise ValueError(f"cannot sort by {sort_by!r}; columns: {self.metrics}")
        larger_is_worse = "delta" not in sort_by
        descending = worst_first == larger_is_worse

        def key(i):
            value = self.rows[i][sort_by]
            missing = value is None or math.isnan(value)
            return (missing, 0.0 if missing else (-value if descending else value))

        return sorted(ids, key=key)


# ----------------------------------------------------------------------------- one sample
def _plain(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def item_maps(item: Mapping) -> dict[str, np.ndarray]:
    """An item's rasters as (H, W) numpy maps and an (H, W, 3) image; ``occluder`` is ``None`` when unknown."""
    image = _plain(item["image"]).astype(np.float32)
    image = np.moveaxis(image, 0, -1) if image.ndim == 3 and image.shape[0] == 3 else image
    maps = {"image": np.clip(image, 0, 1)}
    for key in ("amodal", "visible", "occluder"):
        value = item.get(f"{key}_mask")
        maps[key] = None if value is None else _plain(value).reshape(image.shape[:2]) > 0.5
    maps["visible"] &= maps["amodal"]
    maps["hidden"] = maps["amodal"] & ~maps["visible"]
    for key in ("observed", "target"):
        maps[key] = _plain(item[f"{key}_depth"]).reshape(image.shape[:2]).astype(np.float32)
    return maps



def depth_scale(*maps: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """One colour range ``(lo, hi)`` for several depth maps: percentiles of their finite values together."""
    values = np.concatenate([np.asarray(m, np.float64).ravel() for m in maps])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(max(hi, lo + 1e-6))


def line_through_hidden(hidden_mask: np.ndarray, orientation: str = "row") -> int:
    """The row (or column) holding the most hidden pixels (the first on ties); the middle one without any."""
    hidden = np.asarray(hidden_mask, bool)
    counts = hidden.sum(1 if orientation == "row" else 0)
    return int(np.argmax(counts)) if counts.any() else len(counts) // 2


def line_ends(shape: tuple[int, int], orientation: str, position: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((x0, y0), (x1, y1))`` of a full row or column of an (H, W) map, in pixel-centre coordinates."""
    h, w = shape
    if orientation == "row":
        return (0.0, float(position)), (float(w - 1), float(position))
    if orientation == "column":
        return (float(position), 0.0), (float(position), float(h - 1))
    raise ValueError(f"orientation must be 'row' or 'column', got {orientation!r}")


def cross_section(maps: Mapping[str, np.ndarray], start, end, count: int | None = None) -> tuple[np.ndarray, dict]:
    """Each (H, W) map sampled along the segment ``start → end``.

    Args:
        maps: name → (H, W) map; bool maps are sampled by nearest neighbour, others bilinearly.
        start, end: ``(x, y)`` in pixel coordinates (x = column, y = row; pixel centres at integers).
        count: samples along the segment (default: one per pixel of length, ends included).

    Returns:
        ``(distance, values)``: (count,) distance from ``start`` in pixels, and name → (count,) values.
    """

    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    count = count or int(math.ceil(length)) + 1
    t = np.linspace(0.0, 1.0, count)
    rows, cols = y0 + t * (y1 - y0), x0 + t * (x1 - x0)
    values = {}
    for name, value in maps.items():
        value = np.asarray(value)
        order = 0 if value.dtype == bool else 1
        values[name] = map_coordinates(value.astype(np.float64), [rows, cols], order=order, mode="nearest")
        if order == 0:
            values[name] = values[name] > 0.5
    return t * length, values



@dataclass
class SampleView:
    """Everything one sample's figure shows (see the module docstring)."""

    sample_id: str
    source: str
    maps: dict
    prediction: np.ndarray
    error: np.ndarray
    scale: tuple[float, float]
    error_range: tuple[float, float]
    orientation: str
    position: int
    distance: np.ndarray
    profiles: dict
    points: dict
    row: dict


class Explorer:
    """Items, the predictions to compare on them, and their scores.

    Args:
        items: dicts as the datasets give (see the module docstring), unique ``id``s.
        predictors: name → predictor (item → (H, W) map, as in :mod:`amodal.evaluation.predictors`);
            the first one is scored when no ``table`` is given.
        table: the per-sample scores (:class:`SampleTable`, e.g. from ``samples.csv``).
        baselines: fills drawn in the cross-section (default every one of :mod:`amodal.baselines`).
    """

    def __init__(self, items: Iterable[Mapping], predictors: Mapping[str, Callable], table: SampleTable | None = None,
                 baselines: Mapping[str, Callable] | None = None):
        self.items = {str(item["id"]): item for item in items}
        if not self.items:
            raise ValueError("the explorer needs at least one item")
        if not predictors:
            raise ValueError("the explorer needs at least one predictor (a model or a baseline)")
        self.predictors = dict(predictors)
        self.baselines = dict(BASELINES if baselines is None else baselines)
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        if table is None:
            first = next(iter(self.predictors))
            predict = self.predictors[first]
            records = evaluate_items(lambda item: self._predict(str(item["id"]), first, predict), self.items.values())
            table = SampleTable(rows_from_records(records))
        self.table = table

    def ids(self, bucket: str = "all", sort_by: str | None = None, worst_first: bool = True) -> list[str]:
        """Sample ids of the table that are among the items (see :meth:`SampleTable.select`)."""
        return [i for i in self.table.select(bucket, sort_by, worst_first) if i in self.items]

    def _predict(self, sample_id: str, source: str, predict: Callable) -> np.ndarray:
        key = (sample_id, source)
        if key not in self._cache:
            self._cache[key] = np.asarray(predict(self.items[sample_id]), np.float32).reshape(
                _plain(self.items[sample_id]["observed_depth"]).shape[-2:])
        return self._cache[key]

    def prediction(self, sample_id: str, source: str) -> np.ndarray:
        """``source``'s (H, W) prediction for one sample (computed once, then cached)."""
        if source not in self.predictors:
            raise ValueError(f"unknown prediction source {source!r}; sources: {list(self.predictors)}")
        return self._predict(sample_id, source, self.predictors[source])

    def view(self, sample_id: str, source: str | None = None, orientation: str = "row", position: int | None = None,
             error_scale: str = "shared") -> SampleView:
        """What one sample's figure shows; ``position`` defaults to :func:`line_through_hidden`;
        ``error_scale`` is ``"shared"`` or ``"stretch"`` (see the module docstring)."""
        if sample_id not in self.items:
            raise ValueError(f"no sample {sample_id!r} among the items")
        source = source or next(iter(self.predictors))
        maps = item_maps(self.items[sample_id])
        prediction = self.prediction(sample_id, source)
        if position is None:
            position = line_through_hidden(maps["hidden"], orientation)
        shape = maps["observed"].shape
        position = int(np.clip(position, 0, (shape[0] if orientation == "row" else shape[1]) - 1))
        lines = {"truth": maps["target"], source: prediction, "D_o": maps["observed"], "hidden": maps["hidden"]}
        for name, fill in self.baselines.items():
            lines[name] = fill(None, maps["amodal"], maps["observed"], maps["visible"])
        distance, profiles = cross_section(lines, *line_ends(shape, orientation, position))
        error = np.where(maps["amodal"], np.abs(prediction - maps["target"]), np.nan)
        scale = depth_scale(maps["observed"], maps["target"], prediction)
        if error_scale == "shared":
            error_range = (0.0, scale[1] - scale[0])
        elif error_scale == "stretch":
            error_range = (0.0, max(depth_scale(error, low=0, high=99)[1], 1e-6))
        else:
            raise ValueError(f"error_scale must be 'shared' or 'stretch', got {error_scale!r}")
        return SampleView(sample_id, source, maps, prediction, error, scale, error_range, orientation, position, distance,
                          profiles, object_points(prediction, maps["amodal"], maps["visible"]),
                          self.table.rows.get(sample_id, {}))


# ----------------------------------------------------------------------------- what to compare
def predictors_for(model=None, baselines: Iterable[str] = ("harmonic", "plane", "observed")) -> dict[str, Callable]:
    """Prediction sources: ``"Amodal-DAV2"`` (when a model is given) first, then the named fills."""

    sources = {"Amodal-DAV2": model_predictor(model)} if model is not None else {}
    sources.update({f"fill: {name}": fill_predictor(BASELINES[name]) for name in baselines})
    return sources





# ----------------------------------------------------------------------------- many samples of one input
class SampleBrowser:
    """Step through ``n`` samples of one input (Amodal-DepthFM draws several hidden shapes, notebook 04).

    Args:
        samples: (n, 1, H, W) or (n, 1, 1, H, W) tensor or array (one input, ``n`` draws).
        mask: optional (H, W) region the pictures show (e.g. the amodal mask).

    ``mean`` and ``spread`` are :func:`amodal.models.flow_matching.ensemble_statistics` (the
    population standard deviation) over the ``n`` samples.
    """

    def __init__(self, samples, mask=None):
        tensor = torch.as_tensor(_plain(samples)).float()
        if tensor.ndim < 3 or tensor[0].numel() != tensor.shape[-1] * tensor.shape[-2]:
            raise ValueError(f"samples must be (n, 1, H, W) of one input, got shape {tuple(tensor.shape)}")
        self.samples = tensor.reshape(tensor.shape[0], *tensor.shape[-2:]).numpy()  # (n, H, W)
        mean, spread = ensemble_statistics(torch.from_numpy(self.samples))
        self.mean, self.spread = mean.numpy(), spread.numpy()
        self.mask = None if mask is None else _plain(mask).reshape(self.samples.shape[1:]) > 0.5
        self.index = 0

    def __len__(self) -> int:
        return len(self.samples)

    def show(self, index: int) -> np.ndarray:
        """Go to sample ``index`` (wrapping around) and return it, (H, W)."""
        self.index = int(index) % len(self)
        return self.current

    def step(self, by: int = 1) -> np.ndarray:
        """Move ``by`` samples (negative: back), wrapping around."""
        return self.show(self.index + by)

    @property
    def current(self) -> np.ndarray:
        return self.samples[self.index]
