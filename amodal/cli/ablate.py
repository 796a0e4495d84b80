"""``python -m amodal ablate``: the paper's ablations with the tiny model on synthetic scenes."""
from __future__ import annotations

import argparse
import shlex
import sys

from amodal.cli.arguments import output_folder, positive_int
from amodal.training.ablations import VARIANTS, format_ablations, run_ablations, run_data_scale
from amodal.utils.locks import FolderLock

ABLATE_EXAMPLES = """\
examples:
  # every variant, 400 steps each, scored on 240 held-out scenes (about 1 hour on 2 CPU cores):
  python -m amodal ablate --output runs/ablations
  # the data-scale study (1/8 … all of the pool):
  python -m amodal ablate --study data-scale --output runs/data-scale
  # two variants, quickly:
  python -m amodal ablate --variants full depth_only --steps 50 --held-out 30 --output runs/ablations-try

Writes OUTPUT/ablations.json (results, the paper's values, trends, command, machine, times)
and trains each variant into OUTPUT/<variant>/ (a stopped run restarts where it was; a folder
trained with other --steps or --pool is refused: use another --output, or delete that folder).
SIGTERM and Ctrl-C save the variant's checkpoint and exit with code 143 or 130, writing no report.
"""


def add_ablate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=output_folder, help="run folder")
    parser.add_argument("--study", choices=("variants", "data-scale"), default="variants",
                        help="the paper's variants (default), or the data-scale study: the tiny-synth design "
                        "trained on 1/8, 1/4, 1/2 and all of the pool")
    parser.add_argument("--variants", nargs="+", default=None, help=f"default all: {' '.join(VARIANTS)}")
    parser.add_argument("--steps", type=positive_int, default=400, help="optimiser steps per variant (default 400)")
    parser.add_argument("--pool", type=positive_int, default=1500, help="synthetic training scenes (default 1500)")
    parser.add_argument("--held-out", type=positive_int, default=240, help="held-out scenes (default 240)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_ablate(args: argparse.Namespace) -> int:
    command = "python -m amodal ablate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else ""
    with FolderLock(args.output):
        if args.study == "data-scale":
            report = run_data_scale(args.output, steps=args.steps, pool=args.pool, held_out=args.held_out,
                                    command=command, progress=not args.quiet)
            for row in report["rows"]:
                print(f"{row['scenes']:>6} scenes: hidden RMSE×100 {row['overall_rmse']:.3f} (hard {row['hard_rmse']:.3f})")
            return 0
        report = run_ablations(args.output, steps=args.steps, pool=args.pool, held_out=args.held_out,
                               names=tuple(args.variants) if args.variants else None, command=command,
                               progress=not args.quiet)
        print(format_ablations(report))
        return 0
