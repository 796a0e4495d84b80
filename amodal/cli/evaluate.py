"""``python -m amodal evaluate``: score a model, a baseline or saved predictions by the paper's protocol."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EVALUATE_EXAMPLES = """\
examples:
  # the released Amodal-DAV2 on the paper's validation split (official layout):
  python -m amodal evaluate --model Amodal-Depth-Anything-DAV2/model.safetensors \\
      --data /data/adiw_official --split data_split/sam/val.txt --output runs/eval --device cuda
  # a baseline on 200 held-out synthetic scenes:
  python -m amodal evaluate --model baseline:harmonic --data synth --count 200 --output runs/eval_harmonic

Writes OUTPUT/samples.csv (every metric, raw and aligned, per sample), OUTPUT/summary.json
(means per bucket with 95 % bootstrap intervals) and OUTPUT/table.txt (the paper's units,
beside its Table 1).
"""


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from amodal.baselines import BASELINES
    from amodal.scenes.synth import SHAPE_SETS

    parser.add_argument("--model", required=True, nargs="+",
                        help=f"one or more (compared side by side): an Amodal-DAV2 (model.safetensors or a saved folder), baseline:NAME ({', '.join(BASELINES)}), "
                        "dav2:CHECKPOINT (plain Depth Anything V2, no guidance), depthfm:FOLDER (an Amodal-DepthFM "
                        "saved with save_pretrained: the mean of --samples aligned draws), "
                        "or predictions:DIR (one <id>.npy per sample, (H, W) at the data's size)")
    parser.add_argument("--data", required=True,
                        help="'synth', 'middlebury' (real disparity behind pasted occluders), a folder of our ADIW "
                        "shards, or the official layout")
    parser.add_argument("--split", type=Path, help="official layout: a split list (data_split/sam/val.txt)")
    parser.add_argument("--output", required=True, type=Path, help="folder for samples.csv, summary.json, table.txt")
    parser.add_argument("--mode", choices=("paper", "keep-aspect"), default="paper", help="preprocessing (default paper)")
    parser.add_argument("--size", type=int, default=518, help="network input side (default 518; synth: the scene size)")
    parser.add_argument("--count", type=int, default=200, help="synth: number of held-out scenes (default 200)")
    parser.add_argument("--seed", type=int, default=2026, help="synth: the held-out stream's seed (default 2026)")
    parser.add_argument("--shapes", choices=tuple(SHAPE_SETS), default="simple",
                        help="synth: the scenes' shape families (amodal.scenes.synth.SHAPE_SETS; default simple)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--samples", type=int, default=4, help="Amodal-DepthFM: draws averaged per sample (default 4)")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per forward pass of a model (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def load_items(args) -> list:
    """The evaluation items ``--data`` names."""
    if args.data == "synth":
        from amodal.data.streams import SynthStream

        stream = SynthStream(seed=args.seed, size=args.size, shapes=args.shapes)
        return [stream[k] for k in range(args.count)]
    if args.data == "middlebury":
        from amodal.data.middlebury import middlebury_items

        return middlebury_items(args.count, args.size, args.seed)
    from amodal.adiw.dataset import open_dataset

    return open_dataset(args.data, args.size, args.split, args.mode)


def load_predictor(spec: str, device: str, samples: int = 4):
    """A predictor (:mod:`amodal.evaluation.scoring`) for ``--model``."""
    from amodal.evaluation.scoring import fill_predictor, model_predictor

    if spec.startswith("baseline:"):
        from amodal.baselines import BASELINES

        name = spec.split(":", 1)[1]
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; baselines: {', '.join(BASELINES)}")
        return fill_predictor(BASELINES[name])
    if spec.startswith("dav2:"):
        from amodal.evaluation.scoring import base_depth_predictor
        from amodal.models.amodal_dav2 import DepthAnythingV2

        return base_depth_predictor(DepthAnythingV2.from_pretrained(spec.split(":", 1)[1]).to(device).eval())
    if spec.startswith("depthfm:"):
        from amodal.evaluation.scoring import depthfm_predictor
        from amodal.models.depthfm import AmodalDepthFM

        model = AmodalDepthFM.from_pretrained(spec.split(":", 1)[1]).to(device).eval()
        return depthfm_predictor(model, samples=samples)
    if spec.startswith("predictions:"):
        import numpy as np

        folder = Path(spec.split(":", 1)[1])
        if not folder.is_dir():
            raise FileNotFoundError(f"--model predictions: no such folder: {folder}")

        def predict(item):
            path = folder / f"{item['id']}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"no prediction for sample {item['id']}: {path}")
            return np.load(path)

        return predict
    from amodal.models.amodal_dav2 import AmodalDAV2

    return model_predictor(AmodalDAV2.from_pretrained(spec).to(device))


def run_evaluate(args: argparse.Namespace) -> int:
    from amodal.evaluation.scoring import evaluate_items, format_ci_table, format_comparison, write_comparison, write_report

    try:
        predictors = {spec: load_predictor(spec, args.device, args.samples) for spec in args.model}
        items = load_items(args)
        if args.data == "middlebury":  # models get the whole motorcycle; the unmeasured hidden pixels are not scored
            from amodal.evaluation.mask_quality import given_mask

            predictors = {spec: given_mask(p) for spec, p in predictors.items()}
        records = {spec: evaluate_items(p, items, progress=not args.quiet, batch_size=args.batch_size) for spec, p in predictors.items()}
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(records) == 1:
        spec, only = next(iter(records.items()))
        summary = write_report(only, args.output, name=spec)
        print(format_ci_table(summary, "raw", spec))
        print(f"wrote {args.output}/samples.csv, summary.json, table.txt")
        return 0
    summaries = {spec: write_report(r, args.output / _folder_name(spec), name=spec) for spec, r in records.items()}
    write_comparison(summaries, args.output, command="python -m amodal " + " ".join(sys.argv[1:]))
    print(format_comparison(summaries))
    print(f"wrote {args.output}/comparison.json, comparison.txt and one folder per model")
    return 0


def _folder_name(spec: str) -> str:
    """A folder name for ``--model`` value ``spec`` (``baseline:harmonic`` → ``baseline-harmonic``)."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec.replace(":", "-")).strip("-") or "model"
