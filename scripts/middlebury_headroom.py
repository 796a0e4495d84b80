"""How far below the harmonic fill the Middlebury yardstick lets a fill correction go, fitted on the yardstick itself.

Usage::

    python scripts/middlebury_headroom.py [--count 60] [--features 1 2 5 8 12]
        [--output results/middlebury_headroom.json]

For each number of features (:data:`amodal.evaluation.headroom.FEATURES`, the first ``k``), the
least-squares correction of the harmonic fill is fitted on the hidden pixels of the yardstick's
items and scored on the same pixels (:func:`amodal.evaluation.headroom.fit_fill_correction`):
an in-sample fit, which no model trained elsewhere can match with the same information. The
table is hidden RMSE×100 (raw) with 95 % bootstrap intervals, as ``evaluate`` gives, and says
whether each interval lies wholly below the fill's.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from amodal.data.middlebury import middlebury_items
from amodal.evaluation.headroom import FEATURES, fit_fill_correction
from amodal.evaluation.intervals import summary_with_ci
from amodal.evaluation.mask_quality import given_mask
from amodal.evaluation.scoring import evaluate_items
from amodal.inference import load_predictor


def scored(predictor, items) -> dict:
    overall = summary_with_ci(evaluate_items(predictor, items), resamples=2000)["raw"]["overall"]
    return {"rmse_x100": 100 * overall["rmse"], "rmse_x100_ci": [100 * v for v in overall["rmse_ci"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--features", type=int, nargs="+", default=[1, 2, 5, 8, 12])
    parser.add_argument("--output", type=Path, default=None, help="write the numbers as JSON here")
    args = parser.parse_args()
    items = middlebury_items(args.count, args.size, args.seed)
    fill = given_mask(load_predictor("baseline:harmonic"))  # the fill is given the whole motorcycle, as models are
    rows = [{"name": "harmonic fill", "features": 0, **scored(fill, items)}]
    floor = rows[0]["rmse_x100_ci"][0]
    print("| correction of the fill | RMSE×100 [95 % CI] | interval below the fill's |\n|---|---|---|")
    print(f"| none (the harmonic fill) | {rows[0]['rmse_x100']:.2f} [{floor:.2f}, {rows[0]['rmse_x100_ci'][1]:.2f}] | |")
    for count in args.features:
        correction = fit_fill_correction(fill, items, count)
        row = {"name": f"first {count} features, fitted in-sample", "features": count,
               "feature_names": list(FEATURES[:count]), "weights": correction.weights.tolist(),
               **scored(correction, items)}
        row["interval_below_fill"] = row["rmse_x100_ci"][1] < floor
        rows.append(row)
        low, high = row["rmse_x100_ci"]
        print(f"| {count}: {', '.join(FEATURES[:count])} | {row['rmse_x100']:.2f} [{low:.2f}, {high:.2f}] "
              f"| {'yes' if row['interval_below_fill'] else 'no'} |", flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        record = {"command": "python scripts/middlebury_headroom.py " + " ".join(sys.argv[1:]),
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
                  "rows": rows}
        args.output.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
