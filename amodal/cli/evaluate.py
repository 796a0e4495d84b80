"""``python -m amodal evaluate``: score a model, a baseline or saved predictions by the paper's protocol."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from amodal.baselines import BASELINES
from amodal.cli.arguments import device, non_negative_int, output_folder, positive_int, weights
from amodal.data.items import HELD_OUT_SEED, SOURCES, evaluation_items
from amodal.evaluation.mask_quality import given_mask
from amodal.evaluation.scoring import evaluate_items
from amodal.evaluation.tables import format_ci_table, format_comparison, write_comparison, write_evaluation
from amodal.inference import load_predictor
from amodal.scenes.synth import SHAPE_SETS
from amodal.utils.locks import FolderLock

EVALUATE_EXAMPLES = """\
examples:
  # the released Amodal-DAV2 on the paper's validation split (official layout):
  python -m amodal evaluate --model zhyever/Amodal-Depth-Anything-DAV2 \\
      --data /data/adiw_official --split data_split/sam/val.txt --output runs/eval --device cuda
  # a baseline on 200 held-out synthetic scenes:
  python -m amodal evaluate --model baseline:harmonic --data synth --count 200 --output runs/eval_harmonic

Writes OUTPUT/samples.csv (every metric, raw and aligned, per sample), OUTPUT/summary.json
(means per bucket with 95 % bootstrap intervals) and OUTPUT/table.txt (the paper's units,
beside its Table 1).
"""

SCENES = 200  # held-out scenes of a named source when --count is not given


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, nargs="+",
                        help=f"one or more (compared side by side): an Amodal-DAV2 (model.safetensors, a saved folder, or a hub id "
                        f"such as zhyever/Amodal-Depth-Anything-DAV2), baseline:NAME ({', '.join(BASELINES)}), "
                        "dav2:CHECKPOINT (plain Depth Anything V2, no guidance), depthfm:FOLDER (an Amodal-DepthFM "
                        "saved with save_pretrained: the mean of --samples aligned draws), "
                        "predictions:DIR (one <id>.npy per sample, (H, W) at the data's size), or cascade:biharmonic / "
                        "cascade:pix2gestalt (inpaint, then --cascade-depth, fitted to D_o on M_vis: the paper's pix2gestalt‡)")
    parser.add_argument("--data", required=True,
                        help="'synth', 'middlebury' (real disparity behind pasted occluders), a folder of our ADIW "
                        "shards, or the official layout")
    parser.add_argument("--split", type=Path, help="official layout: a split list (data_split/sam/val.txt)")
    parser.add_argument("--output", required=True, type=output_folder, help="folder for samples.csv, summary.json, table.txt")
    parser.add_argument("--mode", choices=("paper", "keep-aspect"), default="paper", help="preprocessing (default paper)")
    parser.add_argument("--size", type=positive_int, default=518, help="network input side (default 518; synth: the scene size)")
    parser.add_argument("--count", type=positive_int, default=None, help=f"synth and middlebury: number of held-out scenes (default {SCENES}); a folder: the first COUNT samples (default all)")
    parser.add_argument("--seed", type=non_negative_int, default=HELD_OUT_SEED, help=f"synth and middlebury: which scenes (default {HELD_OUT_SEED})")
    parser.add_argument("--shapes", choices=tuple(SHAPE_SETS), default="simple",
                        help="synth: the scenes' shape families (amodal.scenes.synth.SHAPE_SETS; default simple)")
    parser.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--samples", type=positive_int, default=4, help="Amodal-DepthFM: draws averaged per sample (default 4)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="samples per forward pass of a model (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--cascade-depth", type=weights, default=None,
                        help="cascade:INPAINTER: the Depth Anything V2 run on the painting (path or hub id)")
    parser.add_argument("--pix2gestalt", type=weights, default=None,
                        help="cascade:pix2gestalt: the released epoch=000005.ckpt (path or ORG/NAME:FILE)")


def run_evaluate(args: argparse.Namespace) -> int:
    predictors = {spec: load_predictor(spec, args.device, args.samples, args.cascade_depth, args.pix2gestalt)
                  for spec in args.model}
    count = args.count if args.count is not None or args.data not in SOURCES else SCENES
    items = evaluation_items(args.data, count, args.size, seed=args.seed, shapes=args.shapes, split=args.split,
                             mode=args.mode)
    if args.data == "middlebury":  # models get the whole motorcycle; the unmeasured hidden pixels are not scored
        predictors = {spec: given_mask(p) for spec, p in predictors.items()}
    with FolderLock(args.output):
        records = {spec: evaluate_items(p, items, progress=not args.quiet, batch_size=args.batch_size)
                   for spec, p in predictors.items()}
        if len(records) == 1:
            spec, only = next(iter(records.items()))
            summary = write_evaluation(only, args.output, name=spec)
            print(format_ci_table(summary, "raw", spec))
            print(f"wrote {args.output}/samples.csv, summary.json, table.txt")
            return 0
        summaries = {spec: write_evaluation(r, args.output / _folder_name(spec), name=spec) for spec, r in records.items()}
        write_comparison(summaries, args.output, command="python -m amodal " + " ".join(sys.argv[1:]))
    print(format_comparison(summaries))
    print(f"wrote {args.output}/comparison.json, comparison.txt and one folder per model")
    return 0


def _folder_name(spec: str) -> str:
    """A folder name for ``--model`` value ``spec`` (``baseline:harmonic`` → ``baseline-harmonic``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec.replace(":", "-")).strip("-") or "model"
