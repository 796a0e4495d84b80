"""ADIW's sources: photos paired with their SA-1B masks, read and resized once (paper §3.1, step 1).

A *source* is one photo and its SA-1B JSON file, paired by file stem (``sa_1.jpg`` ↔
``sa_1.json``). :func:`load_source` reads both and checks what the builder relies on (the
image decodes, the JSON parses, every RLE decodes, the sizes agree), raising
:class:`~amodal.adiw.shards.SourceError` with the reason, so a bad file is skipped and
named rather than crashing a build. :class:`SourceCache` keeps the last two sources
decoded: each photo also serves its neighbour (its *partner*, :func:`partners_of`) as
the occluders' source.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from skimage.transform import resize

from amodal.adiw.objects import ObjectFilter, select_complete_objects
from amodal.adiw.sa1b import decode_mask, read_sa1b
from amodal.adiw.shards import SourceError
from amodal.utils.images import DEFAULT_MAX_PIXELS, read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Source:
    """One source image and its SA-1B annotation file (either may be missing on disk)."""

    name: str
    image: str
    annotations: str


def find_sources(images: str | os.PathLike, annotations: str | os.PathLike | None = None) -> list[Source]:
    """Pair images with SA-1B JSON files by file stem (``sa_1.jpg`` ↔ ``sa_1.json``).

    Args:
        images: folder of ``.jpg``/``.jpeg``/``.png`` images.
        annotations: folder of ``<stem>.json`` files (default: the images folder, as in SA-1B tars).

    Returns:
        Sources sorted by name; an image without JSON, or a JSON without image, is kept
        (the builder reports it as a bad source).

    Raises:
        FileNotFoundError: a folder that does not exist.
    """
    images = Path(images)
    annotations = Path(annotations) if annotations is not None else images
    for folder in (images, annotations):
        if not folder.is_dir():
            raise FileNotFoundError(f"source folder not found: {folder}")
    found = {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    jsons = {p.stem: p for p in sorted(annotations.glob("*.json"))}
    names = sorted(set(found) | set(jsons))
    return [
        Source(n, str(found.get(n, images / f"{n}.jpg")), str(jsons.get(n, annotations / f"{n}.json")))
        for n in names
    ]


def resize_photo(image, masks, size):
    """Resize so the longer side is ``size``: the image bilinearly (anti-aliased when shrinking),
    the masks by nearest neighbour."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    if scale == 1:
        return image, masks
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    # Channel by channel: the same numbers as one (H, W, 3) call (whose interpolation
    # along the channel axis has weights 1 and 0), at half the work.
    channels = [resize(image[..., c], shape, order=1, anti_aliasing=scale < 1, preserve_range=True) for c in range(3)]
    image = np.clip(np.rint(np.stack(channels, -1)), 0, 255).astype(np.uint8)
    # Nearest neighbour only copies pixels, and which ones depends on the shapes alone:
    # resize a map of pixel numbers once (1-based; 0 would mean "outside") and gather
    # every mask through it, instead of resizing each mask.
    source_pixel = resize(np.arange(1, h * w + 1, dtype=np.float64).reshape(h, w), shape, order=0, anti_aliasing=False).astype(np.int64)
    masks = [(a, np.concatenate([[False], m.ravel()])[source_pixel]) for a, m in masks]
    return image, masks


def load_source(source: Source, size: int | None = None,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, list[tuple[dict, np.ndarray]]]:
    """Read a source's image (RGB uint8) and decoded masks, resized so the longer side is ``size``.

    The image is read by :func:`amodal.utils.images.read_image`: upright by its EXIF
    orientation, refused above ``max_pixels`` before decoding.

    Raises:
        SourceError: with the reason (see :data:`SKIP_REASONS`) and the file named.
    """
    if not Path(source.image).is_file():
        raise SourceError("missing_image", f"image not found: {source.image}")
    try:
        image = read_image(source.image, max_pixels)
    except (ValueError, OSError) as error:  # broken, too large, too small, unreadable
        raise SourceError("unreadable_image", str(error)) from None
    if not Path(source.annotations).is_file():
        raise SourceError("missing_annotations", f"annotation file not found: {source.annotations}")
    try:
        data = read_sa1b(source.annotations, check_rle=False)  # decode_mask checks each RLE below
    except ValueError as error:
        reason = "corrupt_rle" if "RLE" in str(error) else "corrupt_annotations"
        raise SourceError(reason, str(error)) from None
    info = data["image"]
    if (info["height"], info["width"]) != image.shape[:2]:
        raise SourceError(
            "size_mismatch",
            f"{source.annotations} says {info['height']}x{info['width']}, image {source.image} is {image.shape[0]}x{image.shape[1]}",
        )
    masks = []
    for annotation in data["annotations"]:
        try:
            masks.append((annotation, decode_mask(annotation, source.annotations)))
        except ValueError as error:
            raise SourceError("corrupt_rle", str(error)) from None
    if size is not None:
        image, masks = resize_photo(image, masks, size)
    return image, masks


class SourceCache:
    """The last ``capacity`` sources decoded (image, masks and their depth-free complete
    objects), so that a photo is decoded once although it is also the occluder source
    of its neighbour, built just before it. Entries are shared: read, never modify."""

    def __init__(self, capacity: int = 2, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.capacity = capacity
        self.max_pixels = max_pixels
        self._entries: OrderedDict = OrderedDict()

    def _entry(self, source: Source, size: int | None) -> dict:
        key = (source, size)
        if key in self._entries:
            self._entries.move_to_end(key)
        else:
            image, masks = load_source(source, size, max_pixels=self.max_pixels)
            self._entries[key] = {"image": image, "masks": masks}
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return self._entries[key]

    def load(self, source: Source, size: int | None = None) -> tuple[np.ndarray, list[tuple[dict, np.ndarray]]]:
        """:func:`load_source`, remembered."""
        entry = self._entry(source, size)
        return entry["image"], entry["masks"]

    def objects(self, source: Source, size: int | None, object_filter: ObjectFilter) -> tuple[list, list]:
        """``select_complete_objects(masks, None, object_filter)`` of the source, remembered."""
        entry = self._entry(source, size)
        if entry.get("filter") != object_filter:
            entry["filter"], entry["objects"] = object_filter, select_complete_objects(entry["masks"], None, object_filter)
        return entry["objects"]


def partners_of(sources: Sequence[Source]) -> dict[str, Source]:
    """Each source's partner: the next one in name order, the last one's is the first."""
    ordered = sorted(sources, key=lambda s: s.name)
    return {s.name: ordered[(i + 1) % len(ordered)] for i, s in enumerate(ordered)}
