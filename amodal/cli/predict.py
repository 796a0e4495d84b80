"""``python -m amodal predict``: amodal depth for photos and their amodal masks, written to files.

What the command promises about files:

- **Inputs are left alone.** The output folder may not be, or directly hold, any input
  (photo, mask, observed depth, visible mask; compared by resolved path), so no prediction
  can replace one, and a later run over the folder cannot take a prediction for a photo.
  Two photos whose outputs would share a name (``a.jpg`` and ``a.png``; ``a.png`` and
  ``a_color.png``; names that differ only in case, which collide on macOS and Windows)
  are refused before anything runs, both named.
- **Each photo's files are one set.** :func:`amodal.export.write_depth` writes them into a
  temporary folder inside the output and renames them into place once all are written
  (:func:`amodal.utils.atomic.atomic_file_set`): after a full disk no photo has a new
  ``.png`` beside an old ``.npy``. A kill during the renames leaves a marker
  ``.<name>.incomplete``, reported at the end of later runs; every run writes all its
  sets again, so a rerun redoes an incomplete one.
- **A batch goes on past a bad photo.** With a folder of photos, a photo whose inputs
  cannot be read or used (a broken or oversized file, a missing mask, a mask of another
  size, an empty mask) is named on standard error and skipped, the others are predicted,
  the skipped ones are listed at the end and the exit code is 2. A single photo's bad
  input is one line and exit code 2 (:func:`amodal.cli.errors.run_command`). A full disk
  stops the run: every later write would fail too.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from amodal.cli.arguments import device, existing_path, output_folder, positive_int, weights
from amodal.cli.errors import EXIT_BAD_INPUT, INPUT_ERRORS, describe
from amodal.export import depth_file_names, write_depth
from amodal.inference import BACKENDS, load_model, predict
from amodal.models.amodal_dav2 import DepthAnythingV2
from amodal.utils.atomic import incomplete_sets
from amodal.utils.images import DEFAULT_MAX_PIXELS, read_image, read_mask, read_stored

PREDICT_EXAMPLES = """\
examples:
  # one photo, the whole object's mask, D_o from Depth Anything V2:
  python -m amodal predict photo.jpg --mask photo_mask.png --model zhyever/Amodal-Depth-Anything-DAV2 \\
      --base depth-anything/Depth-Anything-V2-Large --output out/ --ply
  # a folder of photos with masks of the same names in another folder, D_o from files:
  python -m amodal predict photos/ --mask masks/ --model runs/dav2/model --observed-depth depths/ --output out/
  # the same network as an ONNX file (python -m amodal export-onnx), run by onnxruntime:
  python -m amodal predict photos/ --mask masks/ --model amodal-dav2.onnx --observed-depth depths/ --output out/

Writes OUTPUT/<name>.png (16-bit normalised disparity), <name>.npy, <name>_color.png (the
object outlined) and, with --ply, <name>.ply (the object's points); each photo's files are
replaced together, never half. OUTPUT may not be a folder that holds the inputs. In a
folder, a photo with bad input is skipped and named; the exit code is then 2.
"""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MASK_SUFFIXES = (".png", ".jpg")
DEPTH_SUFFIXES = (".npy", ".png")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=existing_path, help="a photo, or a folder of photos")
    parser.add_argument("--mask", required=True, type=existing_path,
                        help="the amodal mask (the whole object; nonzero = object) as an image, or a folder of masks "
                        "named like the photos")
    parser.add_argument("--model", required=True, type=weights,
                        help="an Amodal-DAV2: model.safetensors, a saved folder, a hub id "
                        "(zhyever/Amodal-Depth-Anything-DAV2), or an .onnx file written by export-onnx")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="what runs the network: onnxruntime (an .onnx file, on the CPU) or torch; auto (default) "
                        "picks onnxruntime for an .onnx file, torch otherwise")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--base", type=weights, help="a Depth Anything V2 checkpoint that gives the observed depth D_o, "
                        "or its hub id (depth-anything/Depth-Anything-V2-Large)")
    source.add_argument("--observed-depth", type=existing_path,
                        help="D_o as a .npy in [0, 1] or a 16-bit PNG (or a folder of them named like the photos)")
    parser.add_argument("--visible-mask", type=existing_path,
                        help="the object's visible part M_vis as an image (or a folder named like the photos); "
                        "needed by models that correct a fill from it, such as checkpoints/amodal-dav2-tiny-synth")
    parser.add_argument("--output", required=True, type=output_folder,
                        help="folder for the outputs (not one that holds the inputs)")
    parser.add_argument("--ply", action="store_true", help="also write the object as a PLY point cloud")
    parser.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images with more pixels, before decoding them (default {DEFAULT_MAX_PIXELS:,})")


@dataclass
class _Job:
    """The input files of one photo's prediction; ``missing`` says which one a folder lacks."""

    photo: Path
    mask: Path | None
    observed: Path | None = None
    visible: Path | None = None
    missing: str | None = None

    def inputs(self) -> list[tuple[str, Path]]:
        named = (("photo", self.photo), ("mask", self.mask), ("observed depth", self.observed),
                 ("visible mask", self.visible))
        return [(what, path) for what, path in named if path is not None]


def _jobs(image: Path, mask: Path, observed: Path | None, visible: Path | None) -> list[_Job]:
    """One job for a photo, or one per photo of a folder (companions found by stem)."""
    companions = {"--mask": mask, "--observed-depth": observed, "--visible-mask": visible}
    if image.is_file():
        for option, path in companions.items():
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"{option} must be a file when the photo is a file: {path}")
        return [_Job(image, mask, observed, visible)]
    for option, path in companions.items():
        if path is not None and not path.is_dir():
            what = "masks" if option == "--mask" else "files"
            raise FileNotFoundError(f"{option} must be a folder of {what} when the photos are a folder: {path}")
    photos = sorted(p for p in image.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"no .jpg/.png photos in {image}")
    jobs = []
    for photo in photos:
        found, missing = {}, []
        for key, folder, what, suffixes in (("mask", mask, "mask", MASK_SUFFIXES),
                                            ("observed", observed, "observed depth", DEPTH_SUFFIXES),
                                            ("visible", visible, "visible mask", MASK_SUFFIXES)):
            if folder is None:
                continue
            found[key] = next((folder / f"{photo.stem}{s}" for s in suffixes if (folder / f"{photo.stem}{s}").is_file()), None)
            if found[key] is None:
                missing.append(f"no {what} for {photo.name} in {folder} ({', '.join(photo.stem + s for s in suffixes)})")
        jobs.append(_Job(photo, found["mask"], found.get("observed"), found.get("visible"), "; ".join(missing) or None))
    return jobs


def _check_names(jobs: list[_Job]) -> None:
    """Refuse two photos whose outputs would share a file name (case ignored)."""
    owners: dict[str, Path] = {}
    for job in jobs:
        for name in depth_file_names(job.photo.stem).values():
            owner = owners.setdefault(name.casefold(), job.photo)
            if owner != job.photo:
                raise ValueError(f"{owner} and {job.photo} would both be written as {name}: rename one of them "
                                 "(names that differ only in case count as one; they collide on macOS and Windows)")


def _check_output(output: Path, folders: dict[str, Path | None], jobs: list[_Job]) -> None:
    """Refuse an output folder that is an input folder or directly holds an input file."""
    target = output.resolve()
    for option, folder in folders.items():
        if folder is not None and folder.resolve() == target:
            raise ValueError(f"--output {output} is the {option} folder: predictions there would replace or mix "
                             "with the inputs; choose another output folder")
    for job in jobs:
        for what, path in job.inputs():
            if path.resolve().parent == target:
                raise ValueError(f"--output {output} holds the {what} {path}: predictions there could replace "
                                 "inputs, and a later run would read them as photos; choose another output folder")


def _read_mask(path: Path, photo: Path, shape: tuple[int, int], max_pixels: int) -> np.ndarray:
    mask = read_mask(path, max_pixels)
    if mask.shape != shape:
        raise ValueError(f"{path}: mask {mask.shape[1]}×{mask.shape[0]} but photo {photo} is {shape[1]}×{shape[0]}")
    return mask


def _read_observed(path: Path, max_pixels: int) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)  # data, never code
    codes = read_stored(path, max_pixels)
    return codes.astype(np.float32) / (65535.0 if codes.dtype == np.uint16 or codes.max() > 255 else 255.0)


def _read(job: _Job, max_pixels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(rgb, amodal mask, visible mask or None, D_o or None)`` of a job; raises for bad input."""
    if job.missing:
        raise FileNotFoundError(job.missing)
    rgb = read_image(job.photo, max_pixels)
    mask = _read_mask(job.mask, job.photo, rgb.shape[:2], max_pixels)
    visible = _read_mask(job.visible, job.photo, rgb.shape[:2], max_pixels) if job.visible is not None else None
    observed = _read_observed(job.observed, max_pixels) if job.observed is not None else None
    return rgb, mask, visible, observed


def run_predict(args: argparse.Namespace) -> int:
    jobs = _jobs(args.image, args.mask, args.observed_depth, args.visible_mask)
    _check_names(jobs)
    _check_output(args.output, {"photo": args.image, "--mask": args.mask, "--observed-depth": args.observed_depth,
                                "--visible-mask": args.visible_mask}, jobs)
    model = load_model(args.model, args.device, args.backend)
    base = DepthAnythingV2.from_pretrained(args.base).to(args.device).eval() if args.base else None
    if model.needs_visible_mask and args.visible_mask is None:
        raise ValueError(f"{args.model} corrects a fill from the visible object (fill_residual): give --visible-mask")
    batch = args.image.is_dir()
    skipped = []
    for job in tqdm(jobs, desc="predict", disable=len(jobs) < 2):
        try:
            rgb, mask, visible, observed = _read(job, args.max_pixels)
            depth = predict(rgb, mask, model, base_model=base, observed_depth=observed, visible_mask=visible)
        except INPUT_ERRORS as error:
            if not batch:
                raise
            why = describe(error).removeprefix(f"{job.photo}: ")  # the photo is named once
            tqdm.write(f"skipped {job.photo}: {why}", file=sys.stderr)
            skipped.append(job.photo)
            continue
        write_depth(args.output, job.photo.stem, depth, mask, rgb, ply=args.ply)
    print(f"wrote {len(jobs) - len(skipped)} prediction(s) to {args.output}")
    left = incomplete_sets(args.output)
    if left:
        print(f"note: {args.output} holds sets an earlier run left half-renamed ({', '.join(left)}); "
              "run predict on their photos again to redo them", file=sys.stderr)
    if skipped:
        print(f"error: skipped {len(skipped)} of {len(jobs)} photo(s) for bad input: {', '.join(map(str, skipped))}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
