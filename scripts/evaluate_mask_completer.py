"""The mask completer beside ``M_vis`` as it is and its convex hull: hidden-part IoU with intervals.

Usage::

    python scripts/evaluate_mask_completer.py [--model checkpoints/amodal-mask-completer-tiny]
        [--count 240] [--real-count 240] [--output results/mask_completer.json]

Three sets of items (:mod:`amodal.data.mask_items`): held-out synthetic occlusions (seed
2026, 128², the simple and the rich shape sets; the completer trained on seed 2024's rich
scenes and validated on seed 2025's), and the real sample photos' complete objects with
another one pasted over each (seed 0). Scores by :mod:`amodal.evaluation.mask_completion`;
writes the JSON (with this command, the machine and the per-item scores) and prints the tables.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from amodal.data.mask_items import pasted_object_items, sample_objects, synth_mask_items
from amodal.evaluation.mask_completion import compare_with_baselines, format_completion_table
from amodal.models.mask_completer import MaskCompleter
from amodal.training.ablations import machine
from amodal.utils.atomic import atomic_write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="checkpoints/amodal-mask-completer-tiny")
    parser.add_argument("--count", type=int, default=240, help="synthetic occlusions per shape set")
    parser.add_argument("--real-count", type=int, default=240, help="pasted occlusions of the sample photos")
    parser.add_argument("--seed", type=int, default=2026, help="the synthetic held-out seed")
    parser.add_argument("--real-seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128, help="side of the synthetic scenes")
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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.output, report, indent=1)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
