"""``python -m amodal build`` and ``import-pix2gestalt``: ADIW from photos and SA-1B masks, or from pix2gestalt's release (paper §3.1)."""
from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from amodal.adiw.build import BuildConfig, build
from amodal.adiw.depth import load_estimator
from amodal.adiw.pix2gestalt import import_release
from amodal.adiw.sam_masks import SAM_FILES, write_sam_masks
from amodal.adiw.shards import distributed_rank
from amodal.adiw.sources import find_sources
from amodal.cli.arguments import device, non_negative_int, output_folder, positive_int
from amodal.models.checkpoints import HUB_FOLDER
from amodal.utils.hub import pin, resolve
from amodal.utils.images import DEFAULT_MAX_PIXELS

BUILD_EXAMPLES = """\
examples:
  # the photos shipped with the repository, toy depth (no weights needed):
  python -m amodal build --images data_samples/images --masks data_samples/sa1b \\
      --output runs/adiw_samples

  # SA-1B (images and JSON side by side), Depth Anything V2, 4 workers on a GPU:
  python -m amodal build --images /data/sa1b/sa_000000 --output /data/adiw \\
      --depth depth-anything/Depth-Anything-V2-Large --device cuda --workers 4 --size 1024

  # your own photos, masks from SAM (writes SA-1B JSON to OUTPUT/masks first):
  python -m amodal build --images my_photos --sam-checkpoint ybelkada/segment-anything \\
      --depth depth-anything/Depth-Anything-V2-Large --output runs/adiw_mine

  # 4 machines building one dataset into a shared folder (or under torchrun / srun,
  # which set RANK and WORLD_SIZE / SLURM_PROCID and SLURM_NTASKS themselves):
  python -m amodal build --images /data/sa1b/sa_000000 --output /shared/adiw \
      --depth depth-anything/Depth-Anything-V2-Large --device cuda --rank 0 --world-size 4

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
    masks.add_argument("--sam-checkpoint", help="make the masks with SAM's automatic mask generator from this checkpoint "
                       "(a path, or a hub id such as ybelkada/segment-anything)")
    source.add_argument("--sam-model", default="vit_h", help="SAM size of --sam-checkpoint: vit_h, vit_l or vit_b (default vit_h)")
    parser.add_argument("--output", required=True, type=output_folder, help="dataset folder (created; an existing build there is resumed)")
    depth = parser.add_argument_group("depth")
    depth.add_argument(
        "--depth",
        default="row-prior",
        help="a Depth Anything V2 checkpoint (.pth/.safetensors, or a folder of ours) or its hub id "
        "(depth-anything/Depth-Anything-V2-Large), or 'row-prior': "
        "a toy that needs no weights (lower in the image = nearer; labels are meaningless) (default row-prior)",
    )
    depth.add_argument("--device", type=device, default="cpu", help="device of the depth model (and SAM): cpu, cuda, ...; 'cuda' with --workers spreads the workers over the visible GPUs (default cpu)")
    depth.add_argument("--batch-size", type=positive_int, default=4, help="images per depth forward pass (default 4)")
    options = parser.add_argument_group("build")
    options.add_argument("--workers", type=positive_int, default=1, help="parallel processes, one shard at a time and one depth model each (default 1)")
    options.add_argument("--size", type=positive_int, default=None, help="resize photos so the longer side is SIZE (default: keep)")
    options.add_argument("--samples-per-image", type=positive_int, default=4, help="composites per photo, buckets cycled (default 4)")
    options.add_argument("--fit", choices=("visible", "ring"), default="visible", help="fit the label's scale and shift on the target's visible pixels (paper) or on a background ring (default visible)")
    options.add_argument("--label-mode", choices=("ours", "paper"), default="ours", help="'ours': labels at each image's own size; 'paper': the official label script's recipe (depth at a 518² squash, samples at 512², clipped where the official cast wraps) (default ours)")
    options.add_argument("--shard-size", type=positive_int, default=8, help="photos per output shard (default 8)")
    options.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    options.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                         help=f"skip photos with more pixels, before decoding them, as unreadable_image (default {DEFAULT_MAX_PIXELS:,}); "
                         "raise it with --retry-errors to build them")
    options.add_argument("--retry-errors", action="store_true", help="also rebuild sources skipped for bad input, e.g. after repairing them (failed sources are always retried)")
    options.add_argument("--rank", type=non_negative_int, default=None, help="this machine's number when several build into one --output (default: $RANK or $SLURM_PROCID, else 0)")
    options.add_argument("--world-size", type=positive_int, default=None, help="how many machines build into --output, each taking its own shards (default: $WORLD_SIZE or $SLURM_NTASKS, else 1)")
    options.add_argument("--quiet", action="store_true", help="no progress bar")


def run_build(args: argparse.Namespace) -> int:
    if not args.images.is_dir():
        raise FileNotFoundError(f"--images folder not found: {args.images}")
    # Every argument is checked before anything is written into --output.
    config = BuildConfig(
        samples_per_image=args.samples_per_image, size=args.size, fit=args.fit, seed=args.seed, sources_per_shard=args.shard_size,
        label_mode=args.label_mode,
    )
    distributed_rank(args.rank, args.world_size)  # a rank outside the world is an error now, not after SAM ran
    sam = None
    if args.sam_checkpoint is not None:
        sam = resolve(args.sam_checkpoint, SAM_FILES.get(args.sam_model), what="--sam-checkpoint")
    depth = args.depth
    if depth != "row-prior":
        # fetch now, once (a clear error here beats one in every worker); the workers then read
        # the same commit of a hub id from the cache, and build.json records it pinned
        prefix = "dav2:" if depth.startswith("dav2:") else ""
        spec = depth[len(prefix):]
        depth = prefix + pin(spec, resolve(spec, fallback=HUB_FOLDER, what="--depth checkpoint"))
        # one model per process, made where it runs, on the device the builder gives it
        depth = functools.partial(load_estimator, depth, batch_size=args.batch_size)
    masks = args.masks
    if sam is not None:
        masks = args.output / "masks"
        print(f"making SAM masks into {masks} ...")
        write_sam_masks(args.images, masks, sam, args.sam_model, device=args.device, max_pixels=args.max_pixels)
    sources = find_sources(args.images, masks)
    report = build(
        sources, args.output, depth, config, workers=args.workers, progress=not args.quiet, device=args.device,
        retry_errors=args.retry_errors, rank=args.rank, world_size=args.world_size, max_pixels=args.max_pixels,
    )
    print(json.dumps({k: report[k] for k in ("sources", "skipped_sources", "failed_sources", "samples", "buckets", "sources_pending")}, sort_keys=True))
    print(f"wrote {args.output} (report: {args.output / 'report.json'})")
    return 0


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--release", required=True, type=Path, help="pix2gestalt's folder with occlusion/, whole_mask/, visible_object_mask/")
    parser.add_argument("--sa1b-images", required=True, type=Path, help="folder of the original SA-1B images (sa_<id>.jpg)")
    parser.add_argument("--output", required=True, type=output_folder, help="dataset folder")
    parser.add_argument("--depth", default="row-prior", help="a Depth Anything V2 checkpoint or hub id, or 'row-prior' (toy, no weights), as for build (default row-prior)")
    parser.add_argument("--device", type=device, default="cpu", help="device of the depth model (default cpu)")
    parser.add_argument("--fit", choices=("visible", "ring"), default="visible", help="fit the label on the target's visible pixels (paper) or on a background ring (default visible)")
    parser.add_argument("--label-mode", choices=("ours", "paper"), default="ours", help="'ours': labels at each image's own size; 'paper': the official label script's recipe (depth at a 518² squash, samples at 512², clipped where the official cast wraps) (default ours)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_import(args: argparse.Namespace) -> int:
    report = import_release(args.release, args.sa1b_images, args.output, load_estimator(args.depth, device=args.device), fit=args.fit, progress=not args.quiet,
                            label_mode=args.label_mode)
    print(json.dumps(report, sort_keys=True))
    return 0
