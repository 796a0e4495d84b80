"""Tiny ADIW sources for tests: photos of bright shapes on a dark gradient, with SA-1B JSON.

The depth "model" :class:`BrightnessDepth` reads disparity off brightness (bright =
near), so the ring test, composites and labels all behave like the real thing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from amodal.adiw.sa1b import annotation_from_mask, write_sa1b


class BrightnessDepth:
    name = "brightness"

    def predict(self, images):
        from amodal.adiw.depth import as_float_image, normalise_disparity

        return [normalise_disparity(as_float_image(i).mean(-1) + 1e-3 * np.arange(i.shape[0])[:, None]) for i in images]


def disc(shape, centre, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def write_photo(folder: Path, name: str, seed: int, shape=(48, 64)) -> tuple[Path, Path]:
    """``images/<name>.png`` and ``sa1b/<name>.json`` with three complete discs and one border blob."""
    rng = np.random.default_rng(seed)
    h, w = shape
    image = np.zeros((h, w, 3), np.float64) + np.linspace(0.05, 0.25, h)[:, None, None]
    masks = []
    for k in range(3):
        centre = (rng.integers(12, h - 12), rng.integers(12, w - 12))
        m = disc(shape, centre, int(rng.integers(7, 10)))
        for prev in masks:
            m &= ~prev
        image[m] = rng.uniform(0.55, 1.0, 3)
        masks.append(m)
    border = disc(shape, (h // 2, 0), 6)
    image[border] = 0.6
    masks.append(border)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    image_path = folder / "images" / f"{name}.png"
    Image.fromarray((image * 255).astype(np.uint8)).save(image_path)
    annotations = [annotation_from_mask(m, id=1000 + 7 * i, predicted_iou=0.95, stability_score=0.97) for i, m in enumerate(masks)]
    json_path = write_sa1b(folder / "sa1b" / f"{name}.json", {"image_id": seed, "width": w, "height": h, "file_name": image_path.name}, annotations)
    return image_path, json_path


def write_sources(folder: Path, count: int, seed: int = 0) -> None:
    for i in range(count):
        write_photo(folder, f"img_{i:03d}", seed + i)
