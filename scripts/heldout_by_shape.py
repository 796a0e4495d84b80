"""Hidden RMSE×100 per target shape of a synthetic held-out evaluation (the model card's table).

Usage::

    python scripts/heldout_by_shape.py EVAL_FOLDER [--seed 2026] [--size 112] [--shapes rich]

``EVAL_FOLDER`` is the ``--output`` of ``python -m amodal evaluate ... --data synth``: one
folder per model with its ``samples.csv``. Item ``k`` of the held-out stream is rendered
again (:meth:`amodal.data.streams.SynthStream.occlusion`) to learn which shape the target is; the table averages each model's per-sample RMSE per shape.
"""
from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from amodal.data.streams import SynthStream


def target_kind(stream: SynthStream, index: int) -> str:
    """The shape family of the target of item ``index`` of ``stream``."""
    occlusion = stream.occlusion(index)
    return occlusion.scene.objects[occlusion.target].kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the evaluation's --output folder")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--shapes", default="rich")
    args = parser.parse_args()
    models = sorted(p.parent for p in args.folder.glob("*/samples.csv"))
    if not models:
        raise SystemExit(f"no */samples.csv under {args.folder}")
    scores = {m.name: {r["id"]: float(r["raw_rmse"]) for r in csv.DictReader(open(m / "samples.csv"))} for m in models}
    ids = list(next(iter(scores.values())))
    stream = SynthStream(args.seed, args.size, shapes=args.shapes)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for sample_id in ids:
        by_kind[target_kind(stream, int(sample_id.rsplit("-", 1)[1]))].append(sample_id)
    print("| target shape | scenes | " + " | ".join(scores) + " |")
    print("|---|---|" + "---|" * len(scores))
    for kind, members in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        cells = " | ".join(f"{100 * np.mean([s[i] for i in members]):.3f}" for s in scores.values())
        print(f"| {kind} | {len(members)} | {cells} |")


if __name__ == "__main__":
    main()
