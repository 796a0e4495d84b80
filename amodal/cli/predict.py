"""``python -m amodal predict``: amodal depth for photos and their amodal masks, written to files."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from amodal.cli.arguments import device, output_folder
from amodal.export import write_depth
from amodal.inference import predict
from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2

PREDICT_EXAMPLES = """\
examples:
  # one photo, the whole object's mask, D_o from Depth Anything V2:
  python -m amodal predict photo.jpg --mask photo_mask.png --model Amodal-DAV2/model.safetensors \\
      --base depth_anything_v2_vitl.pth --output out/ --ply
  # a folder of photos with masks of the same names in another folder, D_o from files:
  python -m amodal predict photos/ --mask masks/ --model runs/dav2/model --observed-depth depths/ --output out/

Writes OUTPUT/<name>.png (16-bit normalised disparity), <name>.npy, <name>_color.png (the
object outlined) and, with --ply, <name>.ply (the object's points).
"""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="a photo, or a folder of photos")
    parser.add_argument("--mask", required=True, type=Path,
                        help="the amodal mask (the whole object; nonzero = object) as an image, or a folder of masks "
                        "named like the photos")
    parser.add_argument("--model", required=True, help="an Amodal-DAV2: model.safetensors or a saved folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--base", help="a Depth Anything V2 checkpoint that gives the observed depth D_o")
    source.add_argument("--observed-depth", type=Path,
                        help="D_o as a .npy in [0, 1] or a 16-bit PNG (or a folder of them named like the photos)")
    parser.add_argument("--visible-mask", type=Path,
                        help="the object's visible part M_vis as an image (or a folder named like the photos); "
                        "needed by models that correct a fill from it, such as checkpoints/amodal-dav2-tiny-synth")
    parser.add_argument("--output", required=True, type=output_folder, help="folder for the outputs")
    parser.add_argument("--ply", action="store_true", help="also write the object as a PLY point cloud")
    parser.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu)")


def _pairs(image: Path, mask: Path, observed: Path | None,
           visible: Path | None = None) -> list[tuple[Path, Path, Path | None, Path | None]]:
    """(photo, mask, D_o file, visible-mask file) for one photo or for every photo of a folder."""
    if not image.exists():
        raise FileNotFoundError(f"no such photo or folder: {image}")
    if image.is_file():
        if not mask.is_file():
            raise FileNotFoundError(f"--mask: no such file: {mask}")
        if observed is not None and not observed.is_file():
            raise FileNotFoundError(f"--observed-depth: no such file: {observed}")
        if visible is not None and not visible.is_file():
            raise FileNotFoundError(f"--visible-mask: no such file: {visible}")
        return [(image, mask, observed, visible)]
    if not mask.is_dir():
        raise FileNotFoundError(f"--mask must be a folder of masks when the photos are a folder: {mask}")

    def named(folder: Path, stem: str, what: str, suffixes) -> Path:
        for suffix in suffixes:
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
        raise FileNotFoundError(f"no {what} for {stem} in {folder} ({', '.join(stem + s for s in suffixes)})")

    photos = sorted(p for p in image.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"no .jpg/.png photos in {image}")
    return [(p, named(mask, p.stem, "mask", (".png", ".jpg")),
             named(observed, p.stem, "observed depth", (".npy", ".png")) if observed is not None else None,
             named(visible, p.stem, "visible mask", (".png", ".jpg")) if visible is not None else None)
            for p in photos]


def _read_mask(path: Path, photo: Path, shape: tuple[int, int]):
    with Image.open(path) as handle:
        mask = np.asarray(handle.convert("L")) > 0
    if mask.shape != shape:
        raise ValueError(f"{path}: mask {mask.shape[1]}×{mask.shape[0]} but photo {photo} is {shape[1]}×{shape[0]}")
    return mask


def _read_observed(path: Path):
    if path.suffix == ".npy":
        return np.load(path)
    with Image.open(path) as handle:
        codes = np.asarray(handle)
    return codes.astype(np.float32) / (65535.0 if codes.dtype == np.uint16 or codes.max() > 255 else 255.0)


def run_predict(args: argparse.Namespace) -> int:
    pairs = _pairs(args.image, args.mask, args.observed_depth, args.visible_mask)
    model = AmodalDAV2.from_pretrained(args.model).to(args.device).eval()
    base = DepthAnythingV2.from_pretrained(args.base).to(args.device).eval() if args.base else None
    if model.needs_visible_mask and args.visible_mask is None:
        raise ValueError(f"{args.model} corrects a fill from the visible object (fill_residual): give --visible-mask")
    for photo, mask_file, observed_file, visible_file in tqdm(pairs, desc="predict", disable=len(pairs) < 2):
        with Image.open(photo) as handle:
            rgb = np.asarray(handle.convert("RGB"))
        mask = _read_mask(mask_file, photo, rgb.shape[:2])
        visible = _read_mask(visible_file, photo, rgb.shape[:2]) if visible_file is not None else None
        observed = _read_observed(observed_file) if observed_file is not None else None
        depth = predict(rgb, mask, model, base_model=base, observed_depth=observed, visible_mask=visible)
        write_depth(args.output, photo.stem, depth, mask, rgb, ply=args.ply)
    print(f"wrote {len(pairs)} prediction(s) to {args.output}")
    return 0
