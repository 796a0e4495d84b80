"""The command line: ``amodal <command> ...`` or ``python -m amodal <command> ...``.

Commands (``python -m amodal <command> --help`` for each):

- ``build``: build an ADIW dataset (paper §3.1) from a folder of photos with SA-1B
  masks — or masks made here by SAM — into resumable shards.
- ``import-pix2gestalt``: turn pix2gestalt's released occlusion data into ADIW samples.
- ``train``: train Amodal-DAV2 or Amodal-DepthFM by a named recipe (:mod:`amodal.training`), on one
  process or under ``torchrun``.
- ``evaluate``: score a model, a fill baseline or saved predictions on the hidden region,
  per bucket, with bootstrap intervals, beside the paper's Table 1.
- ``ablate``: the paper's ablations with the tiny model on synthetic scenes (:mod:`amodal.training.ablations`).
- ``predict``: amodal depth for a photo (or a folder) and its amodal mask, written as a
  16-bit PNG, ``.npy``, a colour picture and optionally a PLY point cloud.
- ``export-onnx``: an Amodal-DAV2 checkpoint written as an ONNX graph (free batch and size),
  which ``predict`` runs with onnxruntime.
- ``explore``: the explorer (samples, errors, cross-sections, your own photo) as a web app
  on 127.0.0.1, served by Voila.

Each command is a pair (``add_<name>_arguments(parser)``, ``run_<name>(args)``) in
:data:`COMMANDS`; a new command adds its pair there.
"""
from __future__ import annotations

import argparse

from amodal.cli.ablate import ABLATE_EXAMPLES, add_ablate_arguments, run_ablate
from amodal.cli.build import BUILD_EXAMPLES, add_build_arguments, add_import_arguments, run_build, run_import
from amodal.cli.errors import run_command
from amodal.cli.evaluate import EVALUATE_EXAMPLES, add_evaluate_arguments, run_evaluate
from amodal.cli.explore import EXPLORE_EXAMPLES, add_explore_arguments, run_explore
from amodal.cli.export_onnx import EXPORT_EXAMPLES, add_export_onnx_arguments, run_export_onnx
from amodal.cli.predict import PREDICT_EXAMPLES, add_predict_arguments, run_predict
from amodal.cli.train import TRAIN_EXAMPLES, add_train_arguments, run_train

COMMANDS = {
    "build": (add_build_arguments, run_build, "build an ADIW dataset from photos + SA-1B masks", BUILD_EXAMPLES),
    "import-pix2gestalt": (add_import_arguments, run_import, "convert pix2gestalt's released occlusions into ADIW samples", None),
    "train": (add_train_arguments, run_train, "train Amodal-DAV2 or Amodal-DepthFM by a named recipe (also under torchrun)", TRAIN_EXAMPLES),
    "evaluate": (add_evaluate_arguments, run_evaluate, "score an Amodal-DAV2, a baseline or saved predictions on the hidden region", EVALUATE_EXAMPLES),
    "ablate": (add_ablate_arguments, run_ablate, "the paper's ablations, small: tiny Amodal-DAV2 variants on synthetic scenes", ABLATE_EXAMPLES),
    "predict": (add_predict_arguments, run_predict, "amodal depth for photos and their amodal masks, written to files", PREDICT_EXAMPLES),
    "export-onnx": (add_export_onnx_arguments, run_export_onnx, "write an Amodal-DAV2 as an ONNX graph for onnxruntime", EXPORT_EXAMPLES),
    "explore": (add_explore_arguments, run_explore, "the explorer as a web app on 127.0.0.1 (Voila)", EXPLORE_EXAMPLES),
}


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (exit code 2) rather than the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def make_parser() -> argparse.ArgumentParser:
    # Name no command here: the list below is made from COMMANDS, so it cannot promise one that does not exist.
    description = "Amodal depth estimation; 'python -m amodal COMMAND --help' explains each command below."
    parser = Parser(prog="amodal", description=description)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="on an error, show the whole traceback instead of one line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _, help_text, epilog) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, parents=[common],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments (a bad one: argparse's usage line, exit 2) and run the command
    through :func:`amodal.cli.errors.run_command` (a bad input: one line, exit 2; a bug: exit 1)."""
    args = make_parser().parse_args(argv)
    return run_command(lambda: COMMANDS[args.command][1](args), debug=args.debug)
