"""Command line: ``python -m amodal <command> ...``.

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
- ``explore``: the explorer (samples, errors, cross-sections, your own photo) as a web app
  on 127.0.0.1, served by Voila.

Each command is a pair (``add_<name>_arguments(parser)``, ``run_<name>(args)``) in
:data:`COMMANDS`; a new command adds its pair there.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from amodal.cli.ablate import ABLATE_EXAMPLES, add_ablate_arguments, run_ablate
from amodal.cli.evaluate import EVALUATE_EXAMPLES, add_evaluate_arguments, run_evaluate
from amodal.cli.explore import EXPLORE_EXAMPLES, add_explore_arguments, run_explore
from amodal.cli.predict import PREDICT_EXAMPLES, add_predict_arguments, run_predict
from amodal.cli.train import TRAIN_EXAMPLES, add_train_arguments, run_train

BUILD_EXAMPLES = """\
examples:
  # the photos shipped with the repository, toy depth (no weights needed):
  python -m amodal build --images data_samples/images --masks data_samples/sa1b \\
      --output runs/adiw_samples

  # SA-1B (images and JSON side by side), Depth Anything V2, 4 workers on a GPU:
  python -m amodal build --images /data/sa1b/sa_000000 --output /data/adiw \\
      --depth checkpoints/depth_anything_v2_vitl.pth --device cuda --workers 4 --size 1024

  # your own photos, masks from SAM (writes SA-1B JSON to OUTPUT/masks first):
  python -m amodal build --images my_photos --sam-checkpoint sam_vit_h_4b8939.pth \\
      --depth checkpoints/depth_anything_v2_vitl.pth --output runs/adiw_mine

  # 4 machines building one dataset into a shared folder (or under torchrun / srun,
  # which set RANK and WORLD_SIZE / SLURM_PROCID and SLURM_NTASKS themselves):
  python -m amodal build --images /data/sa1b/sa_000000 --output /shared/adiw \
      --depth checkpoints/depth_anything_v2_vitl.pth --device cuda --rank 0 --world-size 4

Run the same command again after an interruption: finished sources are kept and the
rest is built, ending with exactly the samples of an uninterrupted run. Sources that
failed with an unexpected error (e.g. out of GPU memory) are tried again; sources
skipped for bad input (corrupt JSON or RLE, unreadable image, size mismatch) are
tried again only with --retry-errors. The result: OUTPUT/shard-NNNNN/ (samples +
manifest.jsonl), OUTPUT/report.json (counts, skipped and failed sources and why,
sources_pending), OUTPUT/build.json (the settings).
"""


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("sources")
    source.add_argument("--images", required=True, type=Path, help="folder of .jpg/.png photos")
    masks = source.add_mutually_exclusive_group()
    masks.add_argument("--masks", type=Path, help="folder of SA-1B JSON files named like the photos (default: the photos' folder, as in SA-1B)")
    masks.add_argument("--sam-checkpoint", type=Path, help="make the masks with SAM's automatic mask generator from this checkpoint")
    source.add_argument("--sam-model", default="vit_h", help="SAM size of --sam-checkpoint: vit_h, vit_l or vit_b (default vit_h)")
    parser.add_argument("--output", required=True, type=Path, help="dataset folder (created; an existing build there is resumed)")
    depth = parser.add_argument_group("depth")
    depth.add_argument(
        "--depth",
        default="row-prior",
        help="a Depth Anything V2 checkpoint (.pth/.safetensors, or a folder of ours), or 'row-prior': "
        "a toy that needs no weights (lower in the image = nearer; labels are meaningless) (default row-prior)",
    )
    depth.add_argument("--device", default="cpu", help="device of the depth model (and SAM): cpu, cuda, ...; 'cuda' with --workers spreads the workers over the visible GPUs (default cpu)")
    depth.add_argument("--batch-size", type=int, default=4, help="images per depth forward pass (default 4)")
    build = parser.add_argument_group("build")
    build.add_argument("--workers", type=int, default=1, help="parallel processes, one shard at a time and one depth model each (default 1)")
    build.add_argument("--size", type=int, default=None, help="resize photos so the longer side is SIZE (default: keep)")
    build.add_argument("--samples-per-image", type=int, default=4, help="composites per photo, buckets cycled (default 4)")
    build.add_argument("--fit", choices=("visible", "ring"), default="visible", help="fit the label's scale and shift on the target's visible pixels (paper) or on a background ring (default visible)")
    build.add_argument("--label-mode", choices=("ours", "paper"), default="ours", help="'ours': labels at each image's own size; 'paper': the official label script's recipe (depth at a 518² squash, samples at 512², clipped where the official cast wraps) (default ours)")
    build.add_argument("--shard-size", type=int, default=8, help="photos per output shard (default 8)")
    build.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    build.add_argument("--retry-errors", action="store_true", help="also rebuild sources skipped for bad input, e.g. after repairing them (failed sources are always retried)")
    build.add_argument("--rank", type=int, default=None, help="this machine's number when several build into one --output (default: $RANK or $SLURM_PROCID, else 0)")
    build.add_argument("--world-size", type=int, default=None, help="how many machines build into --output, each taking its own shards (default: $WORLD_SIZE or $SLURM_NTASKS, else 1)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")


def run_build(args: argparse.Namespace) -> int:
    from amodal.adiw.build import BuildConfig, build, find_sources

    if not args.images.is_dir():
        print(f"error: --images folder not found: {args.images}", file=sys.stderr)
        return 2
    masks = args.masks
    if args.sam_checkpoint is not None:
        from amodal.adiw.sam_masks import write_sam_masks

        masks = args.output / "masks"
        print(f"making SAM masks into {masks} ...")
        write_sam_masks(args.images, masks, args.sam_checkpoint, args.sam_model, device=args.device)
    depth = args.depth
    if depth != "row-prior":
        from amodal.adiw.depth import load_estimator

        # check the path now (a clear error here beats one in every worker)
        if not Path(depth[5:] if depth.startswith("dav2:") else depth).exists():
            print(f"error: --depth checkpoint not found: {depth}", file=sys.stderr)
            return 2
        # one model per process, made where it runs, on the device the builder gives it
        depth = functools.partial(load_estimator, depth, batch_size=args.batch_size)
    config = BuildConfig(
        samples_per_image=args.samples_per_image, size=args.size, fit=args.fit, seed=args.seed, sources_per_shard=args.shard_size,
        label_mode=args.label_mode,
    )
    try:
        sources = find_sources(args.images, masks)
        report = build(
            sources, args.output, depth, config, workers=args.workers, progress=not args.quiet, device=args.device,
            retry_errors=args.retry_errors, rank=args.rank, world_size=args.world_size,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("sources", "skipped_sources", "failed_sources", "samples", "buckets", "sources_pending")}, sort_keys=True))
    print(f"wrote {args.output} (report: {args.output / 'report.json'})")
    return 0


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--release", required=True, type=Path, help="pix2gestalt's folder with occlusion/, whole_mask/, visible_object_mask/")
    parser.add_argument("--sa1b-images", required=True, type=Path, help="folder of the original SA-1B images (sa_<id>.jpg)")
    parser.add_argument("--output", required=True, type=Path, help="dataset folder")
    parser.add_argument("--depth", default="row-prior", help="a Depth Anything V2 checkpoint, or 'row-prior' (toy, no weights), as for build (default row-prior)")
    parser.add_argument("--device", default="cpu", help="device of the depth model (default cpu)")
    parser.add_argument("--fit", choices=("visible", "ring"), default="visible", help="fit the label on the target's visible pixels (paper) or on a background ring (default visible)")
    parser.add_argument("--label-mode", choices=("ours", "paper"), default="ours", help="'ours': labels at each image's own size; 'paper': the official label script's recipe (depth at a 518² squash, samples at 512², clipped where the official cast wraps) (default ours)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_import(args: argparse.Namespace) -> int:
    from amodal.adiw.pix2gestalt import import_release
    from amodal.adiw.depth import load_estimator

    try:
        report = import_release(args.release, args.sa1b_images, args.output, load_estimator(args.depth, device=args.device), fit=args.fit, progress=not args.quiet,
                                label_mode=args.label_mode)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, sort_keys=True))
    return 0


COMMANDS = {
    "build": (add_build_arguments, run_build, "build an ADIW dataset from photos + SA-1B masks", BUILD_EXAMPLES),
    "import-pix2gestalt": (add_import_arguments, run_import, "convert pix2gestalt's released occlusions into ADIW samples", None),
    "train": (add_train_arguments, run_train, "train Amodal-DAV2 or Amodal-DepthFM by a named recipe (also under torchrun)", TRAIN_EXAMPLES),
    "evaluate": (add_evaluate_arguments, run_evaluate, "score an Amodal-DAV2, a baseline or saved predictions on the hidden region", EVALUATE_EXAMPLES),
    "ablate": (add_ablate_arguments, run_ablate, "the paper's ablations, small: tiny Amodal-DAV2 variants on synthetic scenes", ABLATE_EXAMPLES),
    "predict": (add_predict_arguments, run_predict, "amodal depth for photos and their amodal masks, written to files", PREDICT_EXAMPLES),
    "explore": (add_explore_arguments, run_explore, "the explorer as a web app on 127.0.0.1 (Voila)", EXPLORE_EXAMPLES),
}


def make_parser() -> argparse.ArgumentParser:
    # Name no command here: the list below is made from COMMANDS, so it cannot promise one that does not exist.
    description = "Amodal depth estimation; 'python -m amodal COMMAND --help' explains each command below."
    parser = argparse.ArgumentParser(prog="python -m amodal", description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _, help_text, epilog) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    return COMMANDS[args.command][1](args)


if __name__ == "__main__":
    sys.exit(main())
