"""What ``predict`` reads: one job per object, from a photo or a folder, with its masks found by name.

A job is one object of one photo, written as one output set named ``job.name``. The
object's mask comes from one of:

- a mask image named like the photo (``masks/cat.png`` for ``photos/cat.jpg``): one job,
  named ``cat``;
- a folder named like the photo (``masks/cat/left.png``, ``masks/cat/right.png``): one
  job per mask image in it, named ``cat_left``, ``cat_right``;
- an SA-1B-style annotation file named like the photo (``masks/cat.json``, COCO RLE
  masks, :mod:`amodal.adiw.sa1b`): one job per annotation of at least ``min_area``
  pixels, named ``cat_<annotation id>``, its mask taken as the object's mask.

For a single photo, ``--mask`` is the mask image or the annotation file itself. Observed
depth (``--observed-depth``) is one map per photo, named like the photo; visible masks
(``--visible-mask``) follow the amodal masks' names (``visible/cat.png``, or
``visible/cat/left.png`` for an object of a folder). What a folder lacks is not an error
here: the job carries ``missing`` and the command skips it, naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal.adiw.sa1b import decode_mask, read_sa1b
from amodal.utils.images import read_mask, read_stored

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MASK_SUFFIXES = (".png", ".jpg")
DEPTH_SUFFIXES = (".npy", ".png")
ANNOTATION_SUFFIX = ".json"


@dataclass
class Job:
    """The inputs of one object's prediction.

    ``mask`` is a mask image, or an annotation file with ``annotation`` the index of the
    object's annotation in it; ``missing`` says what a folder lacks (the job is skipped).
    """

    photo: Path
    name: str
    mask: Path | None
    observed: Path | None = None
    visible: Path | None = None
    annotation: int | None = None
    missing: str | None = None

    def inputs(self) -> list[tuple[str, Path]]:
        """``(what, path)`` of every input file the job reads."""
        named = (("photo", self.photo), ("mask", self.mask), ("observed depth", self.observed),
                 ("visible mask", self.visible))
        return [(what, path) for what, path in named if path is not None]

    @property
    def mask_label(self) -> str:
        """The mask as the summary names it: a file, or ``file#annotation id``."""
        if self.mask is None:
            return ""
        return str(self.mask) if self.annotation is None else f"{self.mask}#{self.name.rsplit('_', 1)[-1]}"


def _first(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    return next((folder / f"{stem}{s}" for s in suffixes if (folder / f"{stem}{s}").is_file()), None)


def _annotation_jobs(photo: Path, source: Path, stem: str, min_area: int) -> list[Job]:
    """One job per annotation of ``source`` with at least ``min_area`` pixels (none: one job saying so)."""
    try:
        annotations = read_sa1b(source, check_rle=False)["annotations"]
    except (OSError, ValueError) as error:
        return [Job(photo, stem, source, missing=str(error))]
    jobs = [Job(photo, f"{stem}_{a['id']}", source, annotation=k)
            for k, a in enumerate(annotations) if a.get("area", min_area) >= min_area]
    if not jobs:
        return [Job(photo, stem, source, missing=f"{source}: no annotation of at least {min_area} pixels")]
    return jobs


def _mask_jobs(photo: Path, masks: Path, min_area: int) -> list[Job]:
    """The jobs of one photo of a folder, from the mask folder ``masks`` (module docstring)."""
    stem = photo.stem
    found = _first(masks, stem, MASK_SUFFIXES)
    if found is not None:
        return [Job(photo, stem, found)]
    if (masks / stem).is_dir():
        objects = sorted(p for p in (masks / stem).iterdir() if p.is_file() and p.suffix.lower() in MASK_SUFFIXES)
        if objects:
            return [Job(photo, f"{stem}_{m.stem}", m) for m in objects]
        return [Job(photo, stem, None, missing=f"no mask images in {masks / stem}")]
    if (masks / f"{stem}{ANNOTATION_SUFFIX}").is_file():
        return _annotation_jobs(photo, masks / f"{stem}{ANNOTATION_SUFFIX}", stem, min_area)
    names = ", ".join([stem + s for s in MASK_SUFFIXES] + [f"{stem}/", f"{stem}{ANNOTATION_SUFFIX}"])
    return [Job(photo, stem, None, missing=f"no mask for {photo.name} in {masks} ({names})")]


def _companion(job: Job, folder: Path, what: str, suffixes: tuple[str, ...], per_object: bool) -> tuple[Path | None, str | None]:
    """A companion file of ``job`` in ``folder``: by the object's name (``per_object``), else by the photo's."""
    stem = job.photo.stem
    candidates = []
    if per_object and job.name != stem:
        candidates.append((folder / stem, job.name[len(stem) + 1:]))
    candidates.append((folder, stem))
    for where, name in candidates:
        found = _first(where, name, suffixes) if where.is_dir() else None
        if found is not None:
            return found, None
    where, name = candidates[0]
    return None, f"no {what} for {job.name} in {folder} ({', '.join(name + s for s in suffixes)})"


def find_jobs(image: Path, mask: Path, observed: Path | None, visible: Path | None, min_area: int = 1) -> list[Job]:
    """The jobs of a photo or a folder of photos (module docstring), in a stable order.

    Raises:
        FileNotFoundError: a companion of the wrong kind (a folder for a single photo's
            mask, a file for a folder's), or a folder without photos.
    """
    companions = {"--observed-depth": observed, "--visible-mask": visible}
    if image.is_file():
        for option, path in {"--mask": mask, **companions}.items():
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"{option} must be a file when the photo is a file: {path}")
        if mask.suffix.lower() == ANNOTATION_SUFFIX:
            jobs = _annotation_jobs(image, mask, image.stem, min_area)
            if visible is not None and len(jobs) > 1:
                raise ValueError("--visible-mask is one mask; with an annotation file of several objects give "
                                 "the photo's folder and a folder of visible masks")
            for job in jobs:
                job.observed, job.visible = observed, visible
            return jobs
        return [Job(image, image.stem, mask, observed, visible)]
    for option, path in {"--mask": mask, **companions}.items():
        if path is not None and not path.is_dir():
            what = "masks" if option == "--mask" else "files"
            raise FileNotFoundError(f"{option} must be a folder of {what} when the photos are a folder: {path}")
    photos = sorted(p for p in image.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"no .jpg/.png photos in {image}")
    jobs = [job for photo in photos for job in _mask_jobs(photo, mask, min_area)]
    for job in jobs:
        missing = [job.missing] if job.missing else []
        for attribute, folder, what, suffixes, per_object in (("observed", observed, "observed depth", DEPTH_SUFFIXES, False),
                                                             ("visible", visible, "visible mask", MASK_SUFFIXES, True)):
            if folder is not None:
                found, why = _companion(job, folder, what, suffixes, per_object)
                setattr(job, attribute, found)
                missing += [why] if why else []
        job.missing = "; ".join(missing) or None
    return jobs


def read_object_mask(job: Job, shape: tuple[int, int], max_pixels: int) -> np.ndarray:
    """The job's mask, ``(H, W)`` bool, checked against the photo's ``shape``.

    Raises:
        ValueError: a mask of another size; a corrupt annotation.
    """
    if job.annotation is not None:
        data = read_sa1b(job.mask, check_rle=False)
        mask = decode_mask(data["annotations"][job.annotation], data["source"])
    else:
        mask = read_mask(job.mask, max_pixels)
    if mask.shape != shape:
        raise ValueError(f"{job.mask_label}: mask {mask.shape[1]}×{mask.shape[0]} but photo {job.photo} is "
                         f"{shape[1]}×{shape[0]}")
    return mask


def read_visible_mask(job: Job, shape: tuple[int, int], max_pixels: int) -> np.ndarray:
    """The job's visible mask, ``(H, W)`` bool, checked against the photo's ``shape``."""
    mask = read_mask(job.visible, max_pixels)
    if mask.shape != shape:
        raise ValueError(f"{job.visible}: mask {mask.shape[1]}×{mask.shape[0]} but photo {job.photo} is "
                         f"{shape[1]}×{shape[0]}")
    return mask


def read_observed_depth(path: Path, max_pixels: int) -> np.ndarray:
    """``D_o`` from a ``.npy`` (values as stored) or an 8/16-bit PNG (scaled to [0, 1]), ``(H, W)``."""
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)  # data, never code
    codes = read_stored(path, max_pixels)
    return codes.astype(np.float32) / (65535.0 if codes.dtype == np.uint16 or codes.max() > 255 else 255.0)
