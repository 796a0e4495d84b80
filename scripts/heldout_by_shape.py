"""Hidden RMSE×100 per target shape of a synthetic held-out evaluation (the model card's table).

Usage::

    python scripts/heldout_by_shape.py EVAL_FOLDER [--seed 2026] [--size 112] [--shapes rich]

``EVAL_FOLDER`` is the ``--output`` of ``python -m amodal evaluate ... --data synth``: one
folder per model with its ``samples.csv``. Item ``k`` of the held-out stream is rendered
again (:class:`amodal.training.data.SynthStream` draws it from seed ``(seed, k)``) to learn
which shape the target is; the table averages each model's per-sample RMSE per shape.
"""
from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np


def target_kind(seed: int, index: int, size: int, shapes: str) -> str:
    """The shape family of the target of item ``index`` of ``SynthStream(seed, size, shapes=shapes)``."""
    from amodal.adiw.synthetic import synth_occlusion
    from amodal.composite import BUCKET_RANGES
    from amodal.metrics import BUCKETS

    scene_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])  # as SynthStream draws it
    occlusion = synth_occlusion(scene_seed, size, BUCKET_RANGES[BUCKETS[index % len(BUCKETS)]], shapes=shapes)
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
    by_kind: dict[str, list[str]] = defaultdict(list)
    for sample_id in ids:
        index = int(sample_id.rsplit("-", 1)[1])
        by_kind[target_kind(args.seed, index, args.size, args.shapes)].append(sample_id)
    print("| target shape | scenes | " + " | ".join(scores) + " |")
    print("|---|---|" + "---|" * len(scores))
    for kind, members in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        cells = " | ".join(f"{100 * np.mean([s[i] for i in members]):.3f}" for s in scores.values())
        print(f"| {kind} | {len(members)} | {cells} |")


if __name__ == "__main__":
    main()
