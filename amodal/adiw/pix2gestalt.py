"""Import pix2gestalt's released occlusion data as ADIW samples (paper §3.1, what the official code does).

The official Amodal Depth Anything code never composites: it reuses the synthetic
occlusions that pix2gestalt (Ozguroglu et al., CVPR 2024) released. Their layout,
one id per sample::

    <release>/occlusion/<id>_occlusion.png                the composite I_o
    <release>/whole_mask/<id>_whole_mask.png              the target's whole (amodal) mask
    <release>/visible_object_mask/<id>_visible_mask.png   its visible part
    <release>/whole/<id>_whole.png                        (the target alone; not needed)

plus the original SA-1B photo the composite was made from (the background ``I_b``),
found in ``sa1b_images`` as ``sa_<id>.jpg`` (or ``<id>.jpg``/``.png``), or through a
JSON file mapping ids to file names. Masks are read as ``value > 0``; file names
without the ``_occlusion``-style suffix (``<id>.png``) are accepted too.

Registration. pix2gestalt's composites are the whole SA-1B photo *squashed* to a
square, not cropped; the official label script (``sam_pl_gen_dav2.py``) therefore
squashes both the composite and ``sa_<id>.jpg`` to 518² and compares them pixel for
pixel. We do the same, at the composite's own size: the original is resized to the
composite's height and width whatever its aspect ratio, and the sample's provenance
records the original's size and whether its aspect changed (``registration``). The
occluder mask, needed only for ``fit="ring"``, is taken as the pixels where the
composite differs from the registered original.

The import runs through the builder's shards (:func:`amodal.adiw.build.build`), so it
is parallel, resumable and reports bad ids the same way.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from skimage.transform import resize

from amodal.adiw.build import BuildConfig, build
from amodal.adiw.paper_label import DEPTH_SIZE, LABEL_SIZE, paper_label
from amodal.adiw.sample import AdiwSample, pseudo_label
from amodal.adiw.shards import SourceError
from amodal.adiw.sources import Source
from amodal.metrics import visible_ratio_bucket
from amodal.utils.images import read_image, read_mask

FOLDERS = {"occlusion": "occlusion", "amodal": "whole_mask", "visible": "visible_object_mask"}
SUFFIXES = {"occlusion": "_occlusion", "amodal": "_whole_mask", "visible": "_visible_mask"}


def _find(folder: Path, sample_id: str, suffix: str) -> Path | None:
    for name in (f"{sample_id}{suffix}.png", f"{sample_id}.png", f"{sample_id}{suffix}.jpg", f"{sample_id}.jpg"):
        if (folder / name).is_file():
            return folder / name
    return None


def release_sources(release: str | os.PathLike, sa1b_images: str | os.PathLike, mapping: str | os.PathLike | None = None) -> list[Source]:
    """One :class:`Source` per id in ``<release>/occlusion/``.

    ``Source.image`` is the release folder and ``Source.annotations`` the original
    photo's path (which may not exist; the import then reports it).

    Raises:
        FileNotFoundError: a missing folder.
    """
    release, sa1b_images = Path(release), Path(sa1b_images)
    for folder in [release / f for f in FOLDERS.values()] + [sa1b_images]:
        if not folder.is_dir():
            raise FileNotFoundError(f"pix2gestalt release folder not found: {folder}")
    names = json.loads(Path(mapping).read_text()) if mapping else {}
    ids = sorted({p.stem.split("_")[0] for p in (release / "occlusion").iterdir() if p.suffix.lower() in (".png", ".jpg")})
    sources = []
    for sample_id in ids:
        original = sa1b_images / names[sample_id] if sample_id in names else None
        if original is None:
            candidates = [sa1b_images / f"{stem}{ext}" for stem in (f"sa_{sample_id}", sample_id) for ext in (".jpg", ".png")]
            original = next((c for c in candidates if c.is_file()), candidates[0])
        sources.append(Source(sample_id, str(release), str(original)))
    return sources


def _read_rgb(path: Path, what: str) -> np.ndarray:
    try:
        return read_image(path)
    except (ValueError, OSError) as error:  # missing, broken, too large
        raise SourceError("unreadable_image", f"{what}: {error}") from None


def _read_mask(path: Path | None, what: str, sample_id: str) -> np.ndarray:
    if path is None:
        raise SourceError("missing_annotations", f"{sample_id}: no {what} file")
    try:
        return read_mask(path)
    except (ValueError, OSError) as error:
        raise SourceError("corrupt_annotations", f"{what}: {error}") from None


def process_release_sample(source: Source, config: BuildConfig, estimator, partner=None) -> tuple[list[AdiwSample], dict, float]:
    """One pix2gestalt id → one ADIW sample (same signature as :func:`amodal.adiw.build.process_source`)."""


    release, sample_id = Path(source.image), source.name
    paths = {k: _find(release / FOLDERS[k], sample_id, SUFFIXES[k]) for k in FOLDERS}
    if paths["occlusion"] is None:
        raise SourceError("missing_image", f"{sample_id}: no occlusion image")
    composite = _read_rgb(paths["occlusion"], "occlusion")
    amodal = _read_mask(paths["amodal"], "whole_mask", sample_id)
    visible = _read_mask(paths["visible"], "visible_object_mask", sample_id)
    if not amodal.shape == visible.shape == composite.shape[:2]:
        raise SourceError("size_mismatch", f"{sample_id}: whole_mask {amodal.shape}, visible_object_mask {visible.shape}, occlusion {composite.shape[:2]}")
    if not amodal.any():
        raise SourceError("corrupt_annotations", f"{sample_id}: empty whole_mask {paths['amodal']}")
    visible &= amodal
    if not Path(source.annotations).is_file():
        raise SourceError("missing_image", f"{sample_id}: original SA-1B image not found: {source.annotations}")
    original = photo = _read_rgb(Path(source.annotations), "original")
    (h, w), (H, W) = composite.shape[:2], original.shape[:2]
    registration = {"original_size": [H, W], "composite_size": [h, w],
                    "squashed": abs(h / w - H / W) > 0.01 * (h / w)}  # the release squashes the photo
    if original.shape != composite.shape:
        original = np.clip(np.rint(resize(original, (h, w), order=1, anti_aliasing=True, preserve_range=True)), 0, 255).astype(np.uint8)
    occluder = np.abs(composite.astype(np.int16) - original.astype(np.int16)).max(-1) > 8
    record = {"type": "source", "name": sample_id, "status": "ok", "samples": 0}
    start = time.perf_counter()
    ratio = float(visible.sum() / amodal.sum())
    try:
        if config.label_mode == "paper":  # the official script: squash both photos to 518², label at 512²
            made = paper_label(composite, photo, amodal, visible, estimator)  # the photo as it is: squashed once
            maps = {"image": made.image, "observed_depth": made.observed_depth, "amodal_mask": made.amodal_mask,
                    "visible_mask": made.visible_mask, "target_depth": made.target_depth}
            extra = {"label_mode": "paper", "scale": made.scale, "shift": made.shift, "depth_size": DEPTH_SIZE,
                     "label_size": LABEL_SIZE, "out_of_range": made.out_of_range}
        else:
            observed, background = estimator.predict([composite, original])
            label, scale, shift = pseudo_label(observed, background, amodal, visible, config.fit, occluder)
            maps = {"image": composite, "observed_depth": observed, "amodal_mask": amodal, "visible_mask": visible,
                    "target_depth": label}
            extra = {"label_mode": "ours", "scale": scale, "shift": shift}
    except ValueError as error:
        record["skipped_samples"] = {"label_fit_failed": 1}
        record["detail"] = str(error)
        return [], record, time.perf_counter() - start
    seconds = time.perf_counter() - start
    sample = AdiwSample(
        sample_id=f"p2g-{sample_id}",
        bucket=visible_ratio_bucket(ratio),
        visible_ratio=ratio,
        provenance={"source": "pix2gestalt", "id": sample_id, "original": Path(source.annotations).name,
                    "estimator": estimator.name, "fit": config.fit, "registration": registration, **extra},
        **maps,
    )
    record["samples"] = 1
    return [sample], record, seconds


def import_release(
    release: str | os.PathLike,
    sa1b_images: str | os.PathLike,
    output: str | os.PathLike,
    depth,
    fit: str = "visible",
    mapping: str | os.PathLike | None = None,
    workers: int = 1,
    progress: bool = True,
    per_shard: int = 256,
    label_mode: str = "ours",
) -> dict:
    """Convert a pix2gestalt release into ADIW shards in ``output``; returns the build report.

    Args:
        release: folder with ``occlusion/``, ``whole_mask/``, ``visible_object_mask/``.
        sa1b_images: folder of the original photos.
        output: dataset folder (resumable, like :func:`amodal.adiw.build.build`).
        depth: a :class:`amodal.adiw.depth.DepthEstimator` or a spec string.
        fit: ``"visible"`` or ``"ring"``.
        mapping: optional JSON ``{id: original file name}``.
        label_mode: ``"ours"`` or ``"paper"`` (the official label script's recipe, see
            :mod:`amodal.adiw.paper_label`).
    """
    config = BuildConfig(fit=fit, sources_per_shard=per_shard, cross_image_occluders=False, label_mode=label_mode)
    sources = release_sources(release, sa1b_images, mapping)
    return build(sources, output, depth, config, workers=workers, progress=progress, processor=process_release_sample)


__all__ = ["import_release", "release_sources", "process_release_sample"]
