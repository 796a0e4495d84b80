"""``python -m amodal predict``: amodal depth for photos and their objects' masks, written to files.

One output set per object (:mod:`amodal.cli.predict_inputs` says how objects are found: a
mask per photo, a folder of masks per photo, or an SA-1B-style annotation file). What the
command promises about files:

- **Inputs are left alone.** The output folder may not be, or directly hold, any input
  (photo, mask, observed depth, visible mask; compared by resolved path), so no prediction
  can replace one, and a later run over the folder cannot take a prediction for a photo.
  Two objects whose outputs would share a name (``a.jpg`` and ``a.png``; ``a.png`` and
  ``a_color.png``; names that differ only in case, which collide on macOS and Windows)
  are refused before anything runs, both named.
- **Each object's files are one set.** :func:`amodal.export.write_depth` writes them into a
  temporary folder inside the output and renames them into place once all are written
  (:func:`amodal.utils.atomic.atomic_file_set`): after a full disk no object has a new
  ``.png`` beside an old ``.npy``. A kill during the renames leaves a marker
  ``.<name>.incomplete``, reported at the end of later runs and redone by them.
- **A rerun resumes.** The settings are recorded in ``OUTPUT/predict.json``; a rerun with
  the same settings skips the sets already whole, a run with other settings is refused
  unless ``--overwrite`` (which writes every set again).
- **A batch goes on past a bad input** and lists it. An object whose inputs cannot be read
  or used (a broken or oversized photo, a missing mask, a mask of another size, an empty
  mask) is named on standard error and skipped, the others are predicted, the skipped ones
  are listed at the end and the exit code is 2. ``OUTPUT/summary.csv`` has one row per
  object: written, already written or skipped (with why), and the seconds it took; it is
  written also when the run is stopped. A single photo's bad input is one line and exit
  code 2 (:func:`amodal.cli.errors.run_command`). A full disk stops the run: every later
  write would fail too.
- **Toy depth says so.** ``--base row-prior`` (no weights) gives a ``D_o`` that only grows
  down the image: the command says so, and so does every colour picture it writes.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from amodal.adiw.depth import toy_depth_note
from amodal.cli.arguments import base_depth, crop_margin, device, existing_path, output_folder, positive_int, weights
from amodal.cli.errors import EXIT_BAD_INPUT, INPUT_ERRORS, describe
from amodal.cli.predict_inputs import Job, find_jobs, read_object_mask, read_observed_depth, read_visible_mask
from amodal.cli.predict_points import add_points_arguments, run_points
from amodal.export import depth_file_names, write_depth
from amodal.inference import BACKENDS, CROP_MARGIN, load_base_depth, load_model, predict
from amodal.utils.atomic import atomic_write, atomic_write_json, incomplete_sets
from amodal.utils.images import DEFAULT_MAX_PIXELS, read_image

PREDICT_EXAMPLES = """\
examples:
  # one photo, the whole object's mask, D_o from Depth Anything V2:
  python -m amodal predict photo.jpg --mask photo_mask.png --model zhyever/Amodal-Depth-Anything-DAV2 \\
      --base depth-anything/Depth-Anything-V2-Large --output out/ --ply
  # a folder of photos with masks of the same names in another folder, D_o from files:
  python -m amodal predict photos/ --mask masks/ --model runs/dav2/model --observed-depth depths/ --output out/
  # SA-1B-style annotations (masks/sa_1.json beside photos/sa_1.jpg): one set per object of 5000+ pixels
  python -m amodal predict photos/ --mask masks/ --min-area 5000 --model zhyever/Amodal-Depth-Anything-DAV2 \\
      --base depth-anything/Depth-Anything-V2-Large --output out/
  # no mask drawn: points on the object's visible part; SAM, pix2gestalt and every stage written:
  python -m amodal predict photo.jpg --points 120,85 131,96 --model zhyever/Amodal-Depth-Anything-DAV2 \\
      --base depth-anything/Depth-Anything-V2-Large --sam-checkpoint ybelkada/segment-anything \\
      --pix2gestalt ORG/NAME:epoch=000005.ckpt --output out/
  # the same network as an ONNX file (python -m amodal export-onnx), run by onnxruntime:
  python -m amodal predict photos/ --mask masks/ --model amodal-dav2.onnx --observed-depth depths/ --output out/

Writes OUTPUT/<name>.png (16-bit normalised disparity), <name>.npy, <name>_color.png (the
object outlined) and, with --ply, <name>.ply (the object's points); each object's files are
replaced together, never half. <name> is the photo's stem, or <stem>_<mask name> /
<stem>_<annotation id> for several objects of one photo. OUTPUT may not be a folder that
holds the inputs. A rerun skips what is already written; OUTPUT/summary.csv lists every
object. An object with bad input is skipped and named; the exit code is then 2.
"""
SETTINGS_FILE, SUMMARY_FILE = "predict.json", "summary.csv"
SUMMARY_COLUMNS = ("name", "photo", "mask", "status", "reason", "seconds", "base_depth")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=existing_path, help="a photo, or a folder of photos")
    parser.add_argument("--mask", type=existing_path,
                        help="the object's amodal mask (the whole object; nonzero = object) as an image or an SA-1B-style "
                        ".json of objects; for a folder of photos, a folder holding per photo a mask image, a folder "
                        "of mask images or a .json, named like the photo")
    parser.add_argument("--model", required=True, type=weights,
                        help="an Amodal-DAV2: model.safetensors, a saved folder, a hub id "
                        "(zhyever/Amodal-Depth-Anything-DAV2), or an .onnx file written by export-onnx")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="what runs the network: onnxruntime (an .onnx file, on the CPU) or torch; auto (default) "
                        "picks onnxruntime for an .onnx file, torch otherwise")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--base", type=base_depth,
                        help="what gives the observed depth D_o: a Depth Anything V2 checkpoint or its hub id "
                        "(depth-anything/Depth-Anything-V2-Large), or 'row-prior', a toy that needs no weights "
                        "(depth grows down the image; every picture written says so)")
    source.add_argument("--observed-depth", type=existing_path,
                        help="D_o as a .npy in [0, 1] or a 16-bit PNG (or a folder of them named like the photos)")
    parser.add_argument("--visible-mask", type=existing_path,
                        help="the object's visible part M_vis as an image (or a folder named like the masks); "
                        "needed by models that correct a fill from it, such as checkpoints/amodal-dav2-tiny-synth")
    parser.add_argument("--output", required=True, type=output_folder,
                        help="folder for the outputs (not one that holds the inputs)")
    parser.add_argument("--crop", type=crop_margin, default=CROP_MARGIN,
                        help="the network sees the object's box grown by this share of its size on each side "
                        f"(default {CROP_MARGIN}); 'whole' = the whole photo, as the official demo does")
    parser.add_argument("--size", type=positive_int,
                        help="the side the network sees (default: the side it was trained at, 518 for the paper's)")
    parser.add_argument("--min-area", type=positive_int, default=1,
                        help="objects of an annotation file with fewer pixels are left out (default 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write every set again, also those already written, whatever settings made them")
    parser.add_argument("--ply", action="store_true", help="also write the object as a PLY point cloud")
    parser.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images with more pixels, before decoding them (default {DEFAULT_MAX_PIXELS:,})")
    add_points_arguments(parser)


def _check_names(jobs: list[Job]) -> None:
    """Refuse two objects whose outputs would share a file name (case ignored)."""
    owners: dict[str, Job] = {}
    for job in jobs:
        for name in depth_file_names(job.name).values():
            owner = owners.setdefault(name.casefold(), job)
            if owner is not job:
                first, second = (owner.photo, job.photo) if owner.photo != job.photo else (owner.mask_label, job.mask_label)
                raise ValueError(f"{first} and {second} would both be written as {name}: rename one of them "
                                 "(names that differ only in case count as one; they collide on macOS and Windows)")


def _check_output(output: Path, folders: dict[str, Path | None], jobs: list[Job]) -> None:
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


def _settings(args: argparse.Namespace) -> dict:
    """What makes two runs' predictions the same: a rerun with these skips the sets already written."""
    def name(value):
        return None if value is None else str(Path(value).resolve()) if Path(str(value)).exists() else str(value)

    return {"model": name(args.model), "backend": args.backend, "base": name(args.base),
            "observed_depth": name(args.observed_depth), "visible_mask": name(args.visible_mask),
            "mask": name(args.mask), "crop": args.crop, "size": args.size}


def _check_settings(output: Path, settings: dict, overwrite: bool) -> None:
    """Refuse an output folder of predictions made with other settings (``output/predict.json``)."""
    record = output / SETTINGS_FILE
    if record.is_file() and not overwrite:
        try:
            before = json.loads(record.read_text())
        except (ValueError, UnicodeDecodeError):
            before = None
        if before != settings:
            changed = [f"{k}: {before.get(k)} → {v}" for k, v in settings.items()
                       if isinstance(before, dict) and before.get(k) != v] or ["unreadable record"]
            raise ValueError(f"--output {output} holds predictions made with other settings ({'; '.join(changed)}); "
                             "add --overwrite to replace them, or choose another output folder")


def _written(output: Path, name: str, ply: bool, incomplete: set[str]) -> bool:
    """Whether the set ``name`` is already whole in ``output`` (what a rerun skips)."""
    names = depth_file_names(name)
    if not ply:
        del names["ply"]
    return name not in incomplete and all((output / file).is_file() for file in names.values())


def _read(job: Job, max_pixels: int, base) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """``(rgb, amodal mask, visible mask or None, D_o)`` of a job; raises for bad input."""
    if job.missing:
        raise FileNotFoundError(job.missing)
    rgb = read_image(job.photo, max_pixels)
    mask = read_object_mask(job, rgb.shape[:2], max_pixels)
    visible = read_visible_mask(job, rgb.shape[:2], max_pixels) if job.visible is not None else None
    observed = read_observed_depth(job.observed, max_pixels) if job.observed is not None else base.predict([rgb])[0]
    return rgb, mask, visible, observed


def _write_summary(output: Path, rows: list[dict]) -> None:
    def write(path: Path) -> None:
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, SUMMARY_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(output / SUMMARY_FILE, write)


def run_predict(args: argparse.Namespace) -> int:
    if (args.mask is None) == (args.points is None):
        raise ValueError("give the object's --mask, or --points on its visible part (one of the two)")
    if args.points is not None:
        return run_points(args)
    given = [option for option, value in (("--pix2gestalt", args.pix2gestalt), ("--sam-checkpoint", args.sam_checkpoint))
             if value] + (["--amodal-mask"] if args.amodal_mask != "auto" else [])
    if given:
        raise ValueError(f"{', '.join(given)} only go with --points (a --mask is the amodal mask itself)")
    jobs = find_jobs(args.image, args.mask, args.observed_depth, args.visible_mask, args.min_area)
    _check_names(jobs)
    _check_output(args.output, {"photo": args.image, "--mask": args.mask, "--observed-depth": args.observed_depth,
                                "--visible-mask": args.visible_mask}, jobs)
    model = load_model(args.model, args.device, args.backend)
    if model.needs_visible_mask and args.visible_mask is None:
        raise ValueError(f"{args.model} corrects a fill from the visible object (fill_residual): give --visible-mask")
    base = load_base_depth(args.base, args.device) if args.base else None
    caption = toy_depth_note(base) if base is not None else None
    if caption:
        print(f"note: {caption}", file=sys.stderr)
    settings = _settings(args)
    _check_settings(args.output, settings, args.overwrite)
    incomplete = set(incomplete_sets(args.output))
    batch = len(jobs) > 1 or args.image.is_dir()
    rows, skipped, kept = [], [], 0
    try:
        for job in tqdm(jobs, desc="predict", unit="object", disable=len(jobs) < 2):
            row = {"name": job.name, "photo": str(job.photo), "mask": job.mask_label,
                   "base_depth": str(job.observed) if job.observed else (base.name if base else ""), "seconds": ""}
            if not args.overwrite and _written(args.output, job.name, args.ply, incomplete):
                rows.append({**row, "status": "already written"})
                kept += 1
                continue
            start = time.perf_counter()
            try:
                rgb, mask, visible, observed = _read(job, args.max_pixels, base)
                depth = predict(rgb, mask, model, observed_depth=observed, visible_mask=visible,
                                crop=args.crop, size=args.size)
            except INPUT_ERRORS as error:
                if not batch:
                    raise
                why = describe(error).removeprefix(f"{job.photo}: ")  # the photo is named once
                tqdm.write(f"skipped {job.photo if job.name == job.photo.stem else job.name}: {why}", file=sys.stderr)
                skipped.append(str(job.photo) if job.name == job.photo.stem else f"{job.name} ({job.photo})")
                rows.append({**row, "status": "skipped", "reason": why})
                continue
            if not any(row["status"] == "written" for row in rows):  # recorded with the first set, not before
                args.output.mkdir(parents=True, exist_ok=True)
                atomic_write_json(args.output / SETTINGS_FILE, settings, indent=1)
            write_depth(args.output, job.name, depth, mask, rgb, ply=args.ply, caption=caption)
            rows.append({**row, "status": "written", "seconds": f"{time.perf_counter() - start:.3f}"})
    finally:
        if batch and rows:  # also when stopped: what was done is listed
            _write_summary(args.output, rows)
    written = sum(row["status"] == "written" for row in rows)
    print(f"wrote {written} prediction(s) to {args.output}"
          + (f"; {kept} already written there kept (--overwrite redoes them)" if kept else ""))
    left = incomplete_sets(args.output)
    if left:
        print(f"note: {args.output} holds sets an earlier run left half-renamed ({', '.join(left)}); "
              "run predict on their photos again to redo them", file=sys.stderr)
    if skipped:
        print(f"error: skipped {len(skipped)} of {len(jobs)} object(s) for bad input: {', '.join(skipped)}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
