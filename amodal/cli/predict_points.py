"""``predict PHOTO --points X,Y ...``: the in-the-wild chain from clicks (:mod:`amodal.app.in_the_wild`).

No mask is drawn by hand: the points on the object's visible part give ``M_vis`` (SAM with
``--sam-checkpoint``, else the classical segmenter with the points as a polygon's corners),
``--amodal-mask`` gives ``M_a`` (``auto``: pix2gestalt with ``--pix2gestalt``, else the tiny
mask completer, which beats the hull on held-out scenes, and the command says which; ``hull``;
``completer``; or a mask file), and every intermediate is
written as one set (:mod:`amodal.app.wild_outputs`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amodal.adiw.sam_masks import sam_generator
from amodal.app.in_the_wild import amodal_depth_from_points
from amodal.app.wild_outputs import write_wild_result
from amodal.cli.predict_inputs import read_observed_depth
from amodal.inference import load_base_depth, load_model
from amodal.models.pix2gestalt import Pix2Gestalt
from amodal.utils.images import read_image, read_mask

AMODAL_CHOICES = ("auto", "hull", "completer")


def point(text: str) -> tuple[float, float]:
    """``X,Y`` in pixels of the photo (x = column, y = row)."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a point is X,Y in pixels (such as 120,85), got {text!r}") from None
    if not (x >= 0 and y >= 0):
        raise argparse.ArgumentTypeError(f"a point's X and Y are ≥ 0, got {text!r}")
    return x, y


def amodal_source(text: str) -> str:
    """``auto``, ``hull``, ``completer`` or a mask file that exists."""
    if text in AMODAL_CHOICES or Path(text).is_file():
        return text
    raise argparse.ArgumentTypeError(f"'auto', 'hull', 'completer' or a mask image file, got {text!r} (no such file)")


def add_points_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("from clicks, without a mask (one photo)")
    group.add_argument("--points", type=point, nargs="+", metavar="X,Y",
                       help="points on the object's visible part; with SAM any number, without SAM the corners of a "
                       "rough polygon around the visible part (3 or more)")
    group.add_argument("--amodal-mask", type=amodal_source, default="auto",
                       help="the whole object's mask: auto (pix2gestalt when --pix2gestalt is given, else the tiny "
                       "mask completer of checkpoints/), hull (the convex hull of the visible part), completer, or a mask "
                       "image (default auto)")
    group.add_argument("--pix2gestalt", help="pix2gestalt's released checkpoint (epoch=000005.ckpt), a path or ORG/NAME:FILE")
    group.add_argument("--sam-checkpoint", help="a SAM checkpoint (path or hub id) for the visible mask and for cutting "
                       "the painting; without it the classical segmenter and background removal")
    group.add_argument("--sam-type", default="vit_h", choices=("vit_h", "vit_l", "vit_b"), help="SAM's size (default vit_h)")


def run_points(args: argparse.Namespace) -> int:
    """The chain for one photo and its points; every intermediate written to ``args.output``."""
    if not args.image.is_file():
        raise ValueError("--points take one photo, not a folder")
    for inputs in (args.image, args.observed_depth, args.visible_mask):
        if inputs is not None and Path(inputs).resolve().parent == args.output.resolve():
            raise ValueError(f"--output {args.output} holds the input {inputs}: choose another output folder")
    image = read_image(args.image, args.max_pixels)
    h, w = image.shape[:2]
    outside = [f"{x:g},{y:g}" for x, y in args.points if x > w - 1 or y > h - 1]
    if outside:
        raise ValueError(f"point(s) {' '.join(outside)} lie outside the {w}×{h} photo {args.image}")
    model = load_model(args.model, args.device, args.backend)
    if args.amodal_mask == "auto":
        amodal = "pix2gestalt" if args.pix2gestalt else "completer"
        if amodal == "completer":
            print("note: --amodal-mask auto without --pix2gestalt: the tiny mask completer "
                  "(checkpoints/amodal-mask-completer-tiny)", file=sys.stderr)
    elif args.amodal_mask in ("hull", "completer"):
        amodal = args.amodal_mask
    else:
        amodal = read_mask(args.amodal_mask, args.max_pixels)
    painted = isinstance(amodal, str) and amodal == "pix2gestalt"
    pix2gestalt = Pix2Gestalt.from_checkpoint(args.pix2gestalt).to(args.device) if painted else None
    sam = sam_generator(args.sam_checkpoint, args.sam_type, args.device) if args.sam_checkpoint else None
    base = read_observed_depth(args.observed_depth, args.max_pixels) if args.observed_depth else load_base_depth(
        args.base, args.device)
    visible = read_mask(args.visible_mask, args.max_pixels) if args.visible_mask else None
    result = amodal_depth_from_points(image, model, points=args.points, visible_mask=visible, amodal=amodal, sam=sam,
                                      pix2gestalt=pix2gestalt, base=base, crop=args.crop, size=args.size)
    written = write_wild_result(args.output, args.image.stem, result)
    for message in result.messages:
        if message == result.base_note:
            print(f"note: {message}", file=sys.stderr)
        else:
            print(message)
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.seconds.items())
    print(f"wrote {len(written)} files to {args.output} ({stages})")
    return 0
