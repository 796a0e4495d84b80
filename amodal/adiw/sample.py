r"""One ADIW sample: its fields, how its label is made, and how it is stored (paper §3.1, steps 5–6).

A sample is what Amodal-DAV2 trains on: the composite image ``I_o``, its depth
``D_o`` (observed_depth), the target's amodal mask ``M_a`` and visible mask
``M_vis``, and the pseudo-label ``target_depth``.

**The label.** ``D_b``, the depth of the image *before* the occluder was pasted, sees
the whole target; but ``D_o`` and ``D_b`` are each min-max normalised relative depth,
so they differ by an unknown scale and shift. Fit them on pixels both see — the
paper uses the visible pixels of the target:

.. math:: (s, t) = \arg\min \sum_{p \in M_{vis}} (s\,D_b(p) + t - D_o(p))^2

and paste the aligned background depth inside the amodal mask:
``target = D_o`` outside ``M_a``, ``clip(s·D_b + t, 0, 1)`` inside. The official code
saves ``s·D_b + t`` as uint16 ×65535 without clipping, so values above 1 wrap around
to near 0; we clip. As an option the fit can use a **ring** of background around the
object (pixels neither in ``M_a`` nor under the occluder) instead, which does not
depend on how much of the target is visible.

**On disk** (one folder, a few files a sample): ``<id>.png`` the composite (RGB,
8 bit), ``<id>.masks.png`` (8 bit: 255 visible, 128 hidden, 0 elsewhere) and
``<id>.depth.npz`` with ``observed_depth`` and ``target_depth`` (float16, in [0, 1]).
Every file is written under a temporary name, flushed to disk and renamed
(:mod:`amodal.utils.atomic`), so a reader never sees a half-written file.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from amodal.align import scale_shift
from amodal.utils.atomic import atomic_write, atomic_write_text, fsync_path
from amodal.utils.images import read_image, read_stored
from amodal.utils.paths import inside

FIT_REGIONS = ("visible", "ring")
MASK_VISIBLE, MASK_HIDDEN = 255, 128
# zlib level of the PNGs: 1 writes a 512² photo ~5× faster than Pillow's default 6, for
# files ~8 % larger (PNG is lossless: the pixels are the same at every level).
PNG_LEVEL = 1


@dataclass
class AdiwSample:
    """One training/evaluation sample.

    Attributes:
        sample_id: unique id (``<source>-<k>``).
        image: ``(H, W, 3)`` uint8, the composite ``I_o``.
        observed_depth: ``(H, W)`` float32 ``D_o`` in [0, 1].
        amodal_mask: ``(H, W)`` bool ``M_a``.
        visible_mask: ``(H, W)`` bool ``M_vis`` (inside ``M_a``).
        target_depth: ``(H, W)`` float32 in [0, 1]: ``D_o`` outside ``M_a``, the aligned
            background depth inside.
        bucket: ``"easy"``, ``"mid"`` or ``"hard"``.
        visible_ratio: ``|M_vis| / |M_a|``.
        provenance: where it came from (source, annotation ids, placement, estimator,
            fit region, scale and shift, seed).
    """

    sample_id: str
    image: np.ndarray = field(repr=False)
    observed_depth: np.ndarray = field(repr=False)
    amodal_mask: np.ndarray = field(repr=False)
    visible_mask: np.ndarray = field(repr=False)
    target_depth: np.ndarray = field(repr=False)
    bucket: str
    visible_ratio: float
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def hidden_mask(self) -> np.ndarray:
        """``M_inv = M_a ∧ ¬M_vis``."""
        return self.amodal_mask & ~self.visible_mask


def ring_mask(amodal_mask: np.ndarray, occluder_mask: np.ndarray | None, width: int) -> np.ndarray:
    """Background pixels within ``width`` px of the amodal mask, not under the occluder.

    Args:
        amodal_mask: ``(H, W)`` bool.
        occluder_mask: ``(H, W)`` bool or ``None``.
        width: ring width in pixels (4-connected dilation).
    """
    ring = ndimage.binary_dilation(amodal_mask, iterations=width) & ~amodal_mask
    if occluder_mask is not None:
        ring &= ~occluder_mask
    return ring


def pseudo_label(
    observed_depth: np.ndarray,
    background_depth: np.ndarray,
    amodal_mask: np.ndarray,
    visible_mask: np.ndarray,
    fit: str = "visible",
    occluder_mask: np.ndarray | None = None,
    ring_width: int | None = None,
) -> tuple[np.ndarray, float, float]:
    """ADIW's target depth: ``D_b`` aligned to ``D_o`` and pasted inside ``M_a``, clipped to [0, 1].

    Args:
        observed_depth: ``(H, W)`` ``D_o`` (depth of the composite).
        background_depth: ``(H, W)`` ``D_b`` (depth of the image without the occluder).
        amodal_mask: ``(H, W)`` bool ``M_a``.
        visible_mask: ``(H, W)`` bool ``M_vis``.
        fit: ``"visible"`` (paper: fit on ``M_vis``) or ``"ring"`` (a background ring
            around ``M_a`` that the occluder does not cover).
        occluder_mask: ``(H, W)`` bool; needed for ``fit="ring"``.
        ring_width: ring width in px; default ``max(3, 0.1·sqrt(|M_a|))``.

    Returns:
        ``(target_depth (H, W) float32, scale, shift)``.

    Raises:
        ValueError: unknown ``fit``, shapes that differ, or a fit region too small
            (see :func:`amodal.align.scale_shift`).
    """
    if fit not in FIT_REGIONS:
        raise ValueError(f"fit must be one of {FIT_REGIONS}, got {fit!r}")
    d_o = np.asarray(observed_depth, np.float64)
    d_b = np.asarray(background_depth, np.float64)
    amodal = np.asarray(amodal_mask, bool)
    visible = np.asarray(visible_mask, bool) & amodal
    if not (d_o.shape == d_b.shape == amodal.shape == visible.shape):
        raise ValueError(f"shapes differ: D_o {d_o.shape}, D_b {d_b.shape}, M_a {amodal.shape}, M_vis {visible.shape}")
    if fit == "visible":
        region = visible
    else:
        if occluder_mask is None:
            raise ValueError("fit='ring' needs the occluder mask (the ring must avoid it)")
        width = ring_width or max(3, int(round(0.1 * np.sqrt(amodal.sum()))))
        region = ring_mask(amodal, np.asarray(occluder_mask, bool), width)
    scale, shift = scale_shift(d_b, d_o, region)
    target = d_o.copy()
    target[amodal] = np.clip(scale * d_b[amodal] + shift, 0.0, 1.0)
    return target.astype(np.float32), float(scale), float(shift)


# ----------------------------------------------------------------------------- disk format
def encode_masks(amodal_mask: np.ndarray, visible_mask: np.ndarray) -> np.ndarray:
    """Both masks in one 8-bit image: 255 visible, 128 hidden (amodal not visible), 0 elsewhere."""
    out = np.zeros(amodal_mask.shape, np.uint8)
    out[amodal_mask] = MASK_HIDDEN
    out[amodal_mask & visible_mask] = MASK_VISIBLE
    return out


def decode_masks(encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_masks`: ``(amodal_mask, visible_mask)``."""
    if not np.isin(encoded, (0, MASK_HIDDEN, MASK_VISIBLE)).all():
        raise ValueError("mask image holds values other than 0, 128 and 255")
    return encoded > 0, encoded == MASK_VISIBLE


def write_sample(folder: str | os.PathLike, sample: AdiwSample, defer_fsync: bool = True) -> dict:
    """Write a sample's files into ``folder`` and return its manifest record.

    The record (JSON-ready) names the files relative to ``folder`` and carries the
    bucket, ratio, size and provenance; it is what ``manifest.jsonl`` holds. When it
    returns, the files and their names are on disk, so a manifest written afterwards
    never commits a sample that a power cut could still lose.

    Args:
        folder: the shard's folder.
        sample: what to write.
        defer_fsync: rename each file into place first and flush the files and the
            folder at the end, rather than flushing file and folder for each file
            (:func:`amodal.utils.atomic.atomic_write`). Until this returns a crash may leave a
            named, incomplete file, which no manifest names yet: the builder writes it
            again. ``False`` for a folder that readers trust file by file.
    """

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sid = sample.sample_id
    files = {"image": f"{sid}.png", "masks": f"{sid}.masks.png", "depth": f"{sid}.depth.npz"}
    for name in (sample.observed_depth, sample.target_depth):
        if not np.isfinite(name).all():
            raise ValueError(f"sample {sid}: depth has NaN or inf values")
    masks = encode_masks(sample.amodal_mask, sample.visible_mask)

    def save_depth(p):
        with open(p, "wb") as handle:
            np.savez_compressed(
                handle,
                observed_depth=np.clip(sample.observed_depth, 0, 1).astype(np.float16),
                target_depth=np.clip(sample.target_depth, 0, 1).astype(np.float16),
            )

    writers = {
        "image": lambda p: Image.fromarray(sample.image).save(p, format="PNG", compress_level=PNG_LEVEL),
        "masks": lambda p: Image.fromarray(masks).save(p, format="PNG", compress_level=PNG_LEVEL),
        "depth": save_depth,
    }
    for key, write in writers.items():
        atomic_write(folder / files[key], write, fsync=not defer_fsync)
    if defer_fsync:  # the same guarantee with one folder flush instead of three
        for name in files.values():
            fsync_path(folder / name)
        fsync_path(folder)
    h, w = sample.amodal_mask.shape
    return {
        "type": "sample",
        "id": sid,
        "files": files,
        "height": int(h),
        "width": int(w),
        "bucket": sample.bucket,
        "visible_ratio": float(sample.visible_ratio),
        "provenance": sample.provenance,
    }


def read_sample(folder: str | os.PathLike, record: dict) -> AdiwSample:
    """Load the sample that ``record`` (a manifest line) describes from ``folder``.

    Raises:
        FileNotFoundError: a file of the sample is missing (named).
        ValueError: the record names a file outside ``folder`` (an absolute path, or ``..``).
    """

    folder = Path(folder)
    paths = {k: inside(folder, v, f"sample {record.get('id')}: {k} file") for k, v in record["files"].items()}
    for key, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f"sample {record['id']}: {key} file missing: {path}")
    try:
        image = read_image(paths["image"])
        amodal, visible = decode_masks(read_stored(paths["masks"]))
    except ValueError as error:  # the reader names the file and what is wrong with it
        raise ValueError(f"sample {record['id']}: {error}") from None
    try:
        with np.load(paths["depth"]) as depth:
            observed = depth["observed_depth"].astype(np.float32)
            target = depth["target_depth"].astype(np.float32)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"sample {record['id']}: unreadable depth {paths['depth']}: {error}") from None
    return AdiwSample(
        sample_id=record["id"],
        image=image,
        observed_depth=observed,
        amodal_mask=amodal,
        visible_mask=visible,
        target_depth=target,
        bucket=record["bucket"],
        visible_ratio=record["visible_ratio"],
        provenance=record.get("provenance", {}),
    )


def write_manifest(path: str | os.PathLike, records: list[dict]) -> None:
    """Write ``manifest.jsonl`` atomically: a killed writer leaves the old file or the new one."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The records of a ``manifest.jsonl`` (empty list when it does not exist yet).

    Raises:
        ValueError: a line that is not JSON (the file and line named).
    """
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            # the builder rewrites manifests atomically, so a torn line means the file was damaged elsewhere
            raise ValueError(f"{path}:{number}: not a JSON line ({error.msg}); the manifest is damaged: restore it, "
                             "or delete the shard's folder to build it again") from None
    return records
