"""Read and write SA-1B annotation files: the object masks ADIW starts from (paper §3.1, step 1).

Every SA-1B image ``sa_<id>.jpg`` comes with ``sa_<id>.json``::

    {"image": {"image_id": int, "width": int, "height": int, "file_name": str},
     "annotations": [{"id": int, "bbox": [x, y, w, h], "area": int,
                      "segmentation": {"size": [H, W], "counts": "<COCO RLE>"},
                      "predicted_iou": float, "stability_score": float,
                      "point_coords": [[x, y]], "crop_box": [x, y, w, h]}, ...]}

The file has quirks that readers must keep rather than "fix": boxes are floats
(``12.0``), ``predicted_iou`` is SAM's own IoU estimate and can exceed 1, and ids are
large integers with gaps. :func:`read_sa1b` returns each annotation exactly as stored,
and :func:`write_sa1b` writes it back unchanged, so a round trip loses nothing.

Masks are COCO run-length encodings (RLE), stored column-major (Fortran order):
alternating runs of 0s and 1s, starting with 0s. The compressed ``counts`` string
packs each run into 6-bit characters (``chr(48 + c)``, 5 data bits plus a
continuation bit, sign in the last character) and, from the fourth run on, stores
the difference to the run two places before. pycocotools does the real encoding and
decoding; but on a corrupt string it either raises a bare "Invalid RLE" or, worse,
silently returns a mask filled from uninitialised memory. So :func:`rle_runs`
decodes the string independently (vectorised numpy) and every decode is checked:
non-negative runs that sum to ``H·W``, and a decoded mask with as many pixels as
the runs say. Errors name the file and the annotation id.

Boxes follow the COCO convention of ``pycocotools.mask.toBbox``: the tight box
``[x_min, y_min, x_max + 1 - x_min, y_max + 1 - y_min]`` in pixels, as floats.
(SAM's automatic mask generator writes ``x_max - x_min``, one pixel less; readers
should not rely on either to the pixel.)
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pycocotools import mask as coco_mask

from amodal.utils.atomic import atomic_write

IMAGE_KEYS = ("image_id", "width", "height", "file_name")
ANNOTATION_KEYS = (
    "id",
    "bbox",
    "area",
    "segmentation",
    "predicted_iou",
    "stability_score",
    "point_coords",
    "crop_box",
)
# A run is at most H·W < 2**35 pixels: 7 six-bit characters (35 bits with the sign).
_MAX_CHARS_PER_RUN = 7


def _where(source: str | os.PathLike | None, annotation_id: Any = None) -> str:
    """Prefix for error messages: ``'<file>, annotation <id>: '``."""
    parts = [str(source) if source is not None else "<annotation>"]
    if annotation_id is not None:
        parts.append(f"annotation {annotation_id}")
    return ", ".join(parts) + ": "


def rle_runs(counts: str | bytes | Sequence[int]) -> np.ndarray:
    """Decode COCO RLE counts into run lengths, checking that they are well formed.

    Args:
        counts: a compressed counts string (as in SA-1B) or a list of run lengths
            (COCO's uncompressed form).

    Returns:
        ``(R,)`` int64 run lengths, alternately background and foreground, the first
        one background (it may be 0).

    Raises:
        ValueError: a character outside the RLE alphabet, a string that ends in the
            middle of a run, an over-long run, or a negative run.
    """
    if isinstance(counts, (list, tuple)):
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in counts):
            raise ValueError("uncompressed RLE counts must be integers")
        runs = np.asarray(counts, dtype=np.int64)
        if (runs < 0).any():
            raise ValueError("RLE has a negative run")
        return runs
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError as error:
            raise ValueError("RLE counts string is not ASCII") from error
    if not isinstance(counts, (bytes, bytearray)):
        raise ValueError(f"RLE counts must be a string or a list of integers, got {type(counts).__name__}")
    chars = np.frombuffer(bytes(counts), dtype=np.uint8).astype(np.int64) - 48
    if chars.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ((chars < 0) | (chars > 63)).any():
        raise ValueError("RLE counts string has a character outside '0'..'o'")
    more = (chars & 0x20) != 0
    if more[-1]:
        raise ValueError("RLE counts string ends in the middle of a run")
    # Each run ends at a character without the continuation bit.
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if (lengths > _MAX_CHARS_PER_RUN).any():
        raise ValueError("RLE counts string has a run longer than any image")
    position = np.arange(chars.size) - np.repeat(starts, lengths)  # k: which 5-bit group
    values = np.add.reduceat((chars & 0x1F) << (5 * position), starts)
    negative = (chars[ends] & 0x10) != 0  # sign bit of the last group
    values = values - negative * (np.int64(1) << (5 * lengths))
    # From the fourth run on the string stores run[i] - run[i - 2]: undo with one
    # cumulative sum per parity (runs 1, 3, 5, … and runs 2, 4, 6, …).
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    if (runs < 0).any():
        raise ValueError("RLE has a negative run")
    return runs


def _check_size(size: Any, where: str) -> tuple[int, int]:
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in size)
    ):
        raise ValueError(f"{where}segmentation size must be [height, width] of non-negative integers, got {size!r}")
    return int(size[0]), int(size[1])


def decode_mask(annotation: dict, source: str | os.PathLike | None = None) -> np.ndarray:
    """Decode one annotation's RLE segmentation into a boolean mask.

    Args:
        annotation: an SA-1B annotation (needs ``segmentation`` with ``size`` and
            ``counts``; ``id`` is used in error messages).
        source: the file it came from, named in error messages.

    Returns:
        ``(H, W)`` bool mask, ``H, W = segmentation["size"]``.

    Raises:
        ValueError: a missing or corrupt segmentation (naming ``source`` and the id).
    """
    where = _where(source, annotation.get("id") if isinstance(annotation, dict) else None)
    segmentation = annotation.get("segmentation") if isinstance(annotation, dict) else None
    if not isinstance(segmentation, dict) or "size" not in segmentation or "counts" not in segmentation:
        raise ValueError(f"{where}segmentation must be a dict with 'size' and 'counts'")
    height, width = _check_size(segmentation["size"], where)
    counts = segmentation["counts"]
    try:
        runs = rle_runs(counts)
    except ValueError as error:
        raise ValueError(f"{where}corrupt RLE: {error}") from None
    if int(runs.sum()) != height * width:
        raise ValueError(
            f"{where}corrupt RLE: runs cover {int(runs.sum())} pixels, "
            f"but size {height}x{width} has {height * width}"
        )
    if height * width == 0:
        return np.zeros((height, width), dtype=bool)
    if isinstance(counts, (list, tuple)):
        rle = coco_mask.frPyObjects({"size": [height, width], "counts": [int(r) for r in runs]}, height, width)
    else:
        rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else bytes(counts)}
    try:
        with warnings.catch_warnings():
            # pycocotools 2.0.x builds its output with a numpy-1 idiom that numpy 2 warns about.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="pycocotools")
            warnings.filterwarnings("ignore", message=".*copy keyword.*", category=DeprecationWarning)
            mask = coco_mask.decode(rle).astype(bool)
    except Exception as error:  # pycocotools raises bare ValueError/TypeError
        raise ValueError(f"{where}corrupt RLE: pycocotools could not decode it ({error})") from None
    if mask.shape != (height, width) or int(mask.sum()) != int(runs[1::2].sum()):
        raise ValueError(f"{where}corrupt RLE: decoded mask disagrees with its runs")
    return mask


def encode_mask(mask: np.ndarray) -> dict:
    """Encode a mask as SA-1B stores it.

    Args:
        mask: ``(H, W)`` bool (or 0/1) array.

    Returns:
        ``{"size": [H, W], "counts": str}`` (compressed COCO RLE, ASCII string).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
        raise ValueError("mask must be boolean or hold only 0 and 1")
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("ascii")}


def mask_bbox(mask: np.ndarray) -> list[float]:
    """Tight box of a mask, COCO/SA-1B style ``[x, y, w, h]`` floats (``[0, 0, 0, 0]`` if empty).

    Args:
        mask: ``(H, W)`` bool array.
    """
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1 - cols[0]), float(rows[-1] + 1 - rows[0])]


def annotation_from_mask(
    mask: np.ndarray,
    id: int,
    predicted_iou: float = 1.0,
    stability_score: float = 1.0,
    point_coords: Sequence[Sequence[float]] | None = None,
    crop_box: Sequence[float] | None = None,
) -> dict:
    """Build an SA-1B annotation for a mask, computing ``bbox``, ``area`` and the RLE.

    Args:
        mask: ``(H, W)`` bool array.
        id: the annotation id (SA-1B's are large integers with gaps).
        predicted_iou: the segmenter's own quality estimate (SAM's may exceed 1).
        stability_score: IoU of the mask thresholded at a high and a low cut-off.
        point_coords: the prompt points ``[[x, y], ...]``; default the centre of the box.
        crop_box: the crop the mask was predicted in, ``[x, y, w, h]``; default the whole image.

    Returns:
        An annotation dict with the fields and key order of SA-1B.
    """
    segmentation = encode_mask(mask)
    height, width = segmentation["size"]
    bbox = mask_bbox(mask)
    if point_coords is None:
        point_coords = [[bbox[0] + bbox[2] / 2.0, bbox[1] + bbox[3] / 2.0]]
    if crop_box is None:
        crop_box = [0.0, 0.0, float(width), float(height)]
    return {
        "bbox": bbox,
        "area": int(np.count_nonzero(mask)),
        "segmentation": segmentation,
        "predicted_iou": float(predicted_iou),
        "point_coords": [[float(x), float(y)] for x, y in point_coords],
        "crop_box": [float(v) for v in crop_box],
        "id": int(id),
        "stability_score": float(stability_score),
    }


def _check_image(image: Any, source: Path) -> None:
    where = _where(source)
    if not isinstance(image, dict):
        raise ValueError(f"{where}'image' must be an object, got {type(image).__name__}")
    missing = [key for key in IMAGE_KEYS if key not in image]
    if missing:
        raise ValueError(f"{where}'image' is missing keys {missing}")
    for key in ("width", "height"):
        value = image[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{where}image {key} must be a positive integer, got {value!r}")


def _check_annotation(annotation: Any, index: int, image: dict, source: Path, check_rle: bool) -> None:
    if not isinstance(annotation, dict):
        raise ValueError(f"{_where(source)}annotation #{index} must be an object")
    where = _where(source, annotation.get("id", f"#{index}"))
    missing = [key for key in ANNOTATION_KEYS if key not in annotation]
    if missing:
        raise ValueError(f"{where}missing keys {missing}")
    segmentation = annotation["segmentation"]
    if not isinstance(segmentation, dict) or "size" not in segmentation or "counts" not in segmentation:
        raise ValueError(f"{where}segmentation must be an object with 'size' and 'counts'")
    size = _check_size(segmentation["size"], where)
    if size != (image["height"], image["width"]):
        raise ValueError(
            f"{where}segmentation size {list(size)} disagrees with the image "
            f"[height, width] = [{image['height']}, {image['width']}]"
        )
    bbox = annotation["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ValueError(f"{where}bbox must be [x, y, w, h], got {bbox!r}")
    if check_rle:
        try:
            runs = rle_runs(segmentation["counts"])
        except ValueError as error:
            raise ValueError(f"{where}corrupt RLE: {error}") from None
        if int(runs.sum()) != size[0] * size[1]:
            raise ValueError(
                f"{where}corrupt RLE: runs cover {int(runs.sum())} pixels, "
                f"but size {size[0]}x{size[1]} has {size[0] * size[1]}"
            )


def read_sa1b(path: str | os.PathLike, check_rle: bool = True) -> dict:
    """Read an SA-1B annotation file and check its structure.

    Args:
        path: ``sa_<id>.json``.
        check_rle: also check every RLE string (fast, vectorised), so that a corrupt
            file fails here rather than when a mask is decoded.

    Returns:
        ``{"image": {...}, "annotations": [{...}, ...], "source": str(path)}``, the
        annotations exactly as stored (float boxes, ``predicted_iou`` > 1 and gapped
        ids kept). Decode a mask with ``decode_mask(annotation, data["source"])``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: invalid JSON, missing keys, a segmentation size other than the
            image's ``[height, width]``, or a corrupt RLE — naming the file and the
            annotation id.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SA-1B annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{_where(path)}not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{_where(path)}top level must be an object with 'image' and 'annotations'")
    missing = [key for key in ("image", "annotations") if key not in data]
    if missing:
        raise ValueError(f"{_where(path)}missing top-level keys {missing}")
    _check_image(data["image"], path)
    if not isinstance(data["annotations"], list):
        raise ValueError(f"{_where(path)}'annotations' must be a list")
    for index, annotation in enumerate(data["annotations"]):
        _check_annotation(annotation, index, data["image"], path, check_rle)
    return {"image": data["image"], "annotations": data["annotations"], "source": str(path)}


def write_sa1b(path: str | os.PathLike, image_info: dict, annotations: Sequence[dict]) -> Path:
    """Write an SA-1B annotation file atomically (:func:`amodal.utils.atomic.atomic_write`).

    A killed writer leaves either the old file or the new one, never half of one; the
    file is readable by all (mode 0644).

    Args:
        path: where to write ``sa_<id>.json``.
        image_info: ``{"image_id", "width", "height", "file_name"}``.
        annotations: SA-1B annotations (e.g. from :func:`annotation_from_mask`);
            their sizes must match the image.

    Returns:
        The path written.
    """
    path = Path(path)
    _check_image(image_info, path)
    annotations = list(annotations)
    for index, annotation in enumerate(annotations):
        _check_annotation(annotation, index, image_info, path, check_rle=True)
    data = json.dumps({"image": image_info, "annotations": annotations}).encode("utf-8")

    def write(temporary: Path) -> None:
        temporary.write_bytes(data)
        os.chmod(temporary, 0o644)  # readable by all whatever the umask: an annotation file is not a secret

    return atomic_write(path, write)


def load_masks(path: str | os.PathLike) -> tuple[dict, list[tuple[dict, np.ndarray]]]:
    """Read an SA-1B file and decode every mask.

    Args:
        path: ``sa_<id>.json``.

    Returns:
        ``(image_info, [(annotation, mask), ...])``, each mask ``(H, W)`` bool.
    """
    data = read_sa1b(path)
    return data["image"], [(a, decode_mask(a, data["source"])) for a in data["annotations"]]
