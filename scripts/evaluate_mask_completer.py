"""The mask completer beside ``M_vis`` as it is and its convex hull: hidden-part IoU with intervals.

Usage::

    python scripts/evaluate_mask_completer.py [--model checkpoints/amodal-mask-completer-tiny]
        [--count 240] [--real-count 240] [--output results/mask_completer.json]

Three sets of items (:mod:`amodal.data.mask_items`): held-out synthetic occlusions (seed
2026, 128², the simple and the rich shape sets; the completer trained on seed 2024's rich
scenes and validated on seed 2025's), and the real sample photos' complete objects with
another one pasted over each (seed 0). Scores by :mod:`amodal.evaluation.mask_completion`.

Then the end-to-end number (:mod:`amodal.evaluation.completed_masks`): the shipped tiny
Amodal-DAV2 (``--depth-model``) on the held-out scenes of its own table (seed 2026, 112²,
simple shapes), given the true ``M_a``, the completer's, the hull's and ``M_vis`` itself;
hidden RMSE×100 per bucket, with intervals and the paired difference from the true mask.

Writes the JSON (with this command, the machine and the per-item scores) and prints the tables.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from amodal.data.items import HELD_OUT_SEED, evaluation_items
from amodal.data.mask_items import pasted_object_items, sample_objects, synth_mask_items
from amodal.evaluation.completed_masks import (
    depth_with_completed_masks,
    format_depth_with_masks,
    summarise_depth_with_masks,
)
from amodal.evaluation.mask_completion import (
    BASELINE_COMPLETERS,
    compare_with_baselines,
    format_completion_table,
    network_completer,
)
from amodal.evaluation.predictors import model_predictor
from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.mask_completer import MaskCompleter
from amodal.training.ablations import machine
from amodal.utils.atomic import atomic_write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="checkpoints/amodal-mask-completer-tiny")
    parser.add_argument("--count", type=int, default=240, help="synthetic occlusions per shape set")
    parser.add_argument("--real-count", type=int, default=240, help="pasted occlusions of the sample photos")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="the synthetic held-out seed")
    parser.add_argument("--real-seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128, help="side of the synthetic scenes")
    parser.add_argument("--depth-model", default="checkpoints/amodal-dav2-tiny-synth",
                        help="the Amodal-DAV2 of the end-to-end number ('none': skip it)")
    parser.add_argument("--depth-count", type=int, default=240, help="held-out scenes of the end-to-end number")
    parser.add_argument("--depth-size", type=int, default=112, help="their side (the tiny Amodal-DAV2's)")
    parser.add_argument("--output", type=Path, default=Path("results/mask_completer.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = MaskCompleter.from_pretrained(args.model)
    sets = {
        "synth": lambda: synth_mask_items(args.count, args.seed, args.size, "simple"),
        "synth_rich": lambda: synth_mask_items(args.count, args.seed, args.size, "rich"),
        "real_pasted": lambda: pasted_object_items(args.real_count, args.real_seed),
    }
    report = {"command": "python scripts/evaluate_mask_completer.py " + " ".join(sys.argv[1:]), "model": args.model,
              "machine": machine(), "score": "hidden-part IoU (M̂_a ∧ ¬M_vis against M_a ∧ ¬M_vis), mean over items",
              "sets": {}}
    for name, make in sets.items():
        start = time.perf_counter()
        items = make()
        result = compare_with_baselines(model, items)
        result["seconds"] = time.perf_counter() - start
        if name == "real_pasted":
            result["objects"] = [f"{o['photo']} {o['id']}" for o in sample_objects()]
        report["sets"][name] = result
        print(f"\n{name}: {len(items)} items, {result['seconds']:.0f} s")
        print(format_completion_table(result["summary"]))
        gain = result["gain"]["convex_hull"]
        print("completer − hull: " + ", ".join(f"{g} {v['mean']:+.3f} [{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}], "
                                               f"wins {100 * v['wins']:.0f} %" for g, v in gain.items()))
    if args.depth_model != "none":
        start = time.perf_counter()
        depth_model = AmodalDAV2.from_pretrained(args.depth_model).eval()
        items = evaluation_items("synth", args.depth_count, args.depth_size, seed=args.seed)
        completers = {"true M_a": None, "completer": network_completer(model), **BASELINE_COMPLETERS}
        results = depth_with_completed_masks(model_predictor(depth_model), completers, items)
        summary = summarise_depth_with_masks(results, reference="true M_a")
        report["end_to_end"] = {
            "depth_model": args.depth_model, "items": f"synth seed {args.seed}, {args.depth_count} scenes, "
            f"{args.depth_size}², simple shapes", "score": "hidden RMSE×100 (raw), mean over samples, on the true "
            "M_a ∧ ¬M_vis; minus_reference: paired difference from the true M_a",
            "summary": summary, "seconds": time.perf_counter() - start,
            "records": {name: [{"id": r["id"], "bucket": r["bucket"], "rmse": r["raw"]["rmse"],
                                "mask_hidden_share": r["mask_hidden_share"]} for r in records]
                        for name, records in results.items()},
        }
        print(f"\nend to end: {args.depth_model} given each mask, {len(items)} scenes, "
              f"{report['end_to_end']['seconds']:.0f} s")
        print(format_depth_with_masks(summary))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.output, report, indent=1)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
