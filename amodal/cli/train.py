"""``python -m amodal train``: a recipe, data and an output folder (also under ``torchrun``).

The command builds the model the recipe names (from ``--init`` weights, or at random),
the data (``synth``, a folder of our ADIW shards, or the official layout), and calls
:func:`amodal.training.loop.train`. Under ``torchrun`` it joins the process group
(NCCL on CUDA, gloo on the CPU) and each process takes its share of every step.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from pathlib import Path

TRAIN_EXAMPLES = """\
examples:
  # Amodal-DAV2-L on ADIW as in the paper, 4 GPUs, from the official DAV2 weights:
  torchrun --nproc_per_node 4 -m amodal train --recipe amodal-dav2-l-paper \\
      --data /data/adiw --init depth_anything_v2_vitl.pth --output runs/dav2-l --device cuda

  # a few steps on synthetic scenes on a CPU, a tiny network, random init:
  python -m amodal train --recipe amodal-dav2-s-paper --data synth --init none \\
      --set size=tiny --set input_size=56 --set batch_size=4 --set batch_per_device=2 \\
      --set max_steps=20 --output runs/try

Run the same command with --resume to continue from OUTPUT/checkpoint.pt. SIGTERM and
Ctrl-C save a checkpoint before the process exits.
"""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from amodal.training.recipes import RECIPES

    parser.add_argument("--recipe", required=True, help=f"one of: {', '.join(sorted(RECIPES))}")
    parser.add_argument("--data", required=True,
                        help="'synth' (an endless stream of synthetic scenes), 'bend' (notebook 04's toy, whose "
                        "hidden part bends either way), a folder of our ADIW shards, "
                        "or a folder in the official layout (occlusion/, whole_mask/, depth_da_update_*/)")
    parser.add_argument("--split", type=Path, help="official layout only: a split list (data_split/sam/train.txt)")
    parser.add_argument("--output", required=True, type=Path, help="run folder: log.csv, checkpoint.pt, model/")
    parser.add_argument("--init", default=None,
                        help="starting weights: a Depth Anything V2 checkpoint (.pth) for Amodal-DAV2 recipes, "
                        "DepthFM's depthfm-v1.ckpt for Amodal-DepthFM (with --vae), or 'none' for random weights "
                        "(a tiny network for DepthFM) (required when the recipe starts from weights)")
    parser.add_argument("--vae", default=None, help="Amodal-DepthFM: Stable Diffusion's VAE (diffusers folder or file)")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu; under torchrun cuda:LOCAL_RANK)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a recipe field, e.g. --set max_steps=100 (repeatable)")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (default: the recipe's validation period)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--validation-count", type=int, default=48,
                        help="--data synth, Amodal-DAV2: held-out scenes scored every validate_every steps (default 48)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_overrides(pairs: list[str]) -> dict:
    """``["max_steps=10", "lr=1e-4"]`` → typed values for :func:`amodal.training.recipes.get_recipe`.

    Raises:
        ValueError: no ``=``, an unknown field, or a value of the wrong type.
    """
    from amodal.training.recipes import Recipe

    hints = typing.get_type_hints(Recipe)
    out = {}
    for pair in pairs:
        field, sep, text = pair.partition("=")
        if not sep:
            raise ValueError(f"--set needs FIELD=VALUE, got {pair!r}")
        if field not in hints:
            raise ValueError(f"recipe has no field {field!r}; fields: {', '.join(f.name for f in dataclasses.fields(Recipe))}")
        options = typing.get_args(hints[field]) or (hints[field],)
        kinds = [k for k in options if k is not type(None)]
        if text.lower() == "none" and type(None) in options:
            out[field] = None
            continue
        if kinds[0] is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--set {field}: {text!r} is not true or false")
            out[field] = text.lower() in ("true", "1")
            continue
        try:
            out[field] = kinds[0](text)
        except ValueError:
            raise ValueError(f"--set {field}: {text!r} is not a {kinds[0].__name__}") from None
    return out


def build_data(spec: str, recipe, split: Path | None = None):
    """``synth``, ``bend``, our shards, or the official layout → a dataset of training items."""
    if spec == "synth":
        from amodal.data.streams import SynthPool, SynthStream

        if recipe.synth_pool:
            return SynthPool(seed=recipe.seed, count=recipe.synth_pool, size=recipe.input_size,
                             shapes=recipe.synth_shapes)
        return SynthStream(seed=recipe.seed, size=recipe.input_size, shapes=recipe.synth_shapes)
    if spec == "bend":
        from amodal.data.streams import BendStream

        return BendStream(seed=recipe.seed, size=recipe.input_size)
    from amodal.adiw.dataset import open_dataset

    return open_dataset(spec, recipe.input_size, split)


def build_model(recipe, init: str | None, vae: str | None = None):
    """The recipe's network, initialised from ``init`` (``"none"``: random), and how to train it.

    Returns:
        ``(module, objective, parameters)`` for :func:`amodal.training.loop.train`: the module
        to train (for DepthFM a :class:`~amodal.training.objectives.FlowMatchingLoss` around
        the model), its objective, and the parameters Adam updates (DepthFM: the UNet's only).

    Raises:
        ValueError: an unknown model or size, or no ``init`` for a recipe that starts from weights.
    """
    import torch

    from amodal.training.objectives import FlowMatchingLoss, amodal_dav2_objective, flow_matching_objective

    if init is None and recipe.init is not None:
        hint = (f"depth_anything_v2_vit{recipe.size}.pth" if recipe.model == "amodal-dav2"
                else "depthfm-v1.ckpt with --vae path/to/sd-vae")
        raise ValueError(f"recipe {recipe.name!r} starts from {recipe.init} weights: give --init {hint}, "
                         "or --init none for random weights")
    random_init = init is None or init == "none"
    torch.manual_seed(recipe.seed)  # the new parts of the network (guidance, projections) or all of it
    if recipe.model == "amodal-dav2":
        from amodal.models.amodal_dav2 import AmodalDAV2
        from amodal.models.configs import CONFIGS, SMALL_CONFIGS

        config = {**CONFIGS, **SMALL_CONFIGS}.get(recipe.size)
        if config is None:
            raise ValueError(f"recipe {recipe.name!r}: unknown model size {recipe.size!r} "
                             f"({', '.join([*CONFIGS, *SMALL_CONFIGS])})")
        model = AmodalDAV2(config) if random_init else AmodalDAV2.from_dav2(init, config=config)
        model.set_gradient_checkpointing(recipe.activation_checkpointing)
        return model, amodal_dav2_objective(recipe.loss_region, recipe.silog_lambda), list(model.parameters())
    if recipe.model == "amodal-depthfm":
        from amodal.models.flow_matching import NOISING_STEP
        from amodal.models.depthfm import TINY_MODELS, AmodalDepthFM, tiny_amodal_depthfm

        if random_init:
            name = recipe.tiny_model or "pooled-8"
            if name not in TINY_MODELS:
                raise ValueError(f"recipe {recipe.name!r}: unknown tiny_model {name!r} ({', '.join(TINY_MODELS)})")
            model = tiny_amodal_depthfm(seed=recipe.seed, noising_step=recipe.noising_step or NOISING_STEP,
                                        **TINY_MODELS[name])
        else:
            model = AmodalDepthFM.from_depthfm(init, vae=vae)
        model.autoencoder.requires_grad_(False)  # the VAE is frozen
        return FlowMatchingLoss(model, recipe.time_grid, recipe.hidden_loss_weight), flow_matching_objective, list(model.unet.parameters())
    raise ValueError(f"recipe {recipe.name!r}: unknown model {recipe.model!r}")


def run_train(args: argparse.Namespace) -> int:
    import torch

    from amodal.training.loop import train
    from amodal.training.recipes import get_recipe

    try:
        recipe = get_recipe(args.recipe, **parse_overrides(args.set))
        data = build_data(args.data, recipe, args.split)
        model, objective, parameters = build_model(recipe, args.init, args.vae)
        validate = None
        if args.data == "synth" and recipe.model == "amodal-dav2" and int(os.environ.get("RANK", "0")) == 0:
            from amodal.training.validation import synth_validator

            # another seed than the training stream's (recipe.seed) and the evaluation's default (2026)
            validate = synth_validator(recipe.seed + 1, args.validation_count, recipe.input_size, recipe.synth_shapes)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    device = args.device
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend)
    try:
        result = train(model, objective, data, recipe, args.output, resume=args.resume, device=device,
                       checkpoint_every=args.checkpoint_every, parameters=parameters, progress=not args.quiet,
                       compile=args.compile, validate=validate)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    state = "interrupted at" if result.interrupted else "finished at"
    print(f"{recipe.name}: {state} step {result.step} of {recipe.max_steps}; outputs in {args.output}")
    return 0
