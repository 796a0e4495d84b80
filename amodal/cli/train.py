"""``python -m amodal train``: a recipe, data and an output folder (also under ``torchrun``).

The command builds the model the recipe names (from ``--init`` weights, or at random),
the data (``synth``, a folder of our ADIW shards, or the official layout), and calls
:func:`amodal.training.loop.train`. Under ``torchrun`` it joins the process group
(NCCL on CUDA, gloo on the CPU) and each process takes its share of every step.
"""
from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import torch

from amodal.cli.arguments import device, output_folder, positive_int
from amodal.data.items import training_data
from amodal.training.loop import TrainingStopped, train
from amodal.training.recipes import RECIPES, get_recipe, parse_overrides
from amodal.training.setup import build_model
from amodal.training.state import CHECKPOINT_NAME
from amodal.training.validation import mask_completion_validator, synth_validator
from amodal.utils.locks import FolderLock

TRAIN_EXAMPLES = """\
examples:
  # Amodal-DAV2-L on ADIW as in the paper, 4 GPUs, from the official DAV2 weights:
  torchrun --nproc_per_node 4 -m amodal train --recipe amodal-dav2-l-paper \\
      --data /data/adiw --init depth-anything/Depth-Anything-V2-Large --output runs/dav2-l --device cuda

  # a few steps on synthetic scenes on a CPU, a tiny network, random init:
  python -m amodal train --recipe amodal-dav2-s-paper --data synth --init none \\
      --set size=tiny --set input_size=56 --set batch_size=4 --set batch_per_device=2 \\
      --set max_steps=20 --output runs/try

  # the amodal-mask completer (M_vis and the photo -> M_a), from scratch on synthetic scenes:
  python -m amodal train --recipe amodal-mask-completer-tiny --data synth --init none \\
      --output runs/amodal-mask-completer-tiny

Run the same command with --resume to continue from OUTPUT/checkpoint.pt. SIGTERM and
Ctrl-C save a checkpoint before the process exits, with code 143 (SIGTERM) or 130 (Ctrl-C):
the run did not finish.
"""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, help=f"one of: {', '.join(sorted(RECIPES))}")
    parser.add_argument("--data", required=True,
                        help="'synth' (an endless stream of synthetic scenes), 'bend' (notebook 04's toy, whose "
                        "hidden part bends either way), a folder of our ADIW shards, "
                        "or a folder in the official layout (occlusion/, whole_mask/, depth_da_update_*/)")
    parser.add_argument("--split", type=Path, help="official layout only: a split list (data_split/sam/train.txt)")
    parser.add_argument("--output", required=True, type=output_folder, help="run folder: log.csv, checkpoint.pt, model/")
    parser.add_argument("--init", default=None,
                        help="starting weights: a Depth Anything V2 checkpoint (.pth, a transformers folder, or a hub id "
                        "such as depth-anything/Depth-Anything-V2-Small or -Small-hf) for Amodal-DAV2 recipes, "
                        "DepthFM's depthfm-v1.ckpt for Amodal-DepthFM (with --vae), or 'none' for random weights "
                        "(a tiny network for DepthFM) (required when the recipe starts from weights)")
    parser.add_argument("--vae", default=None, help="Amodal-DepthFM: Stable Diffusion's VAE (diffusers folder or file, "
                        "or a hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5)")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    parser.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu; under torchrun cuda:LOCAL_RANK)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a recipe field, e.g. --set max_steps=100 (repeatable)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=None, help="steps between checkpoints (default: the recipe's validation period)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--validation-count", type=positive_int, default=48,
                        help="--data synth, Amodal-DAV2 and the mask completer: held-out scenes scored every "
                        "validate_every steps (default 48)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_train(args: argparse.Namespace) -> int:
    recipe = get_recipe(args.recipe, **parse_overrides(args.set))
    data = training_data(args.data, recipe, args.split)
    model, objective, parameters = build_model(recipe, args.init, args.vae)
    validate = None
    if args.data == "synth" and int(os.environ.get("RANK", "0")) == 0:
        # another seed than the training stream's (recipe.seed) and the evaluation's default (2026)
        if recipe.model == "amodal-dav2":
            validate = synth_validator(recipe.seed + 1, args.validation_count, recipe.input_size, recipe.synth_shapes,
                                       recipe.synth_realism)
        elif recipe.model == "mask-completer":
            validate = mask_completion_validator(recipe.seed + 1, args.validation_count,
                                                 recipe.scene_size or recipe.input_size, recipe.synth_shapes,
                                                 recipe.synth_realism)
    device = args.device
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend)
    # one writer per run folder: rank 0 holds the lock for all ranks of a torchrun job
    lock = FolderLock(args.output) if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext()
    try:
        with lock:
            result = train(model, objective, data, recipe, args.output, resume=args.resume, device=device,
                           checkpoint_every=args.checkpoint_every, parameters=parameters, progress=not args.quiet,
                           compile=args.compile, validate=validate)
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    if result.interrupted:
        raise TrainingStopped(f"{recipe.name}: stopped by {result.signal.name} at step {result.step} of "
                              f"{recipe.max_steps}; checkpoint saved in {args.output / CHECKPOINT_NAME}; "
                              "run the same command with --resume to continue", result.signal)
    print(f"{recipe.name}: finished at step {result.step} of {recipe.max_steps}; outputs in {args.output}")
    return 0
