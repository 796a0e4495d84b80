"""A yardstick with real depth: the Middlebury motorcycle with pasted occluders.

Synthetic scenes have exact hidden depth but simple shapes. Here the depth is real:
scikit-image's copy of the Middlebury 2014 *Motorcycle* stereo pair comes with its
ground-truth disparity (``skimage.data.stereo_motorcycle()``, loaded from the installed
package, not redistributed). The target is the motorcycle (the near part of the scene,
its largest component); objects cut from the sample photos (``data_samples/``) are pasted
over it in 2-D, as ADIW pastes them (:func:`amodal.adiw.composite.paste_occluder`). Because the
occluder is pasted, the truth behind it is simply the measured disparity.

``D_o`` is what a perfect depth model would say about the composite: the measured
disparity, with the occluder standing flat just in front of the target (10 % nearer than
its nearest point), min-max normalised. The target is put in the same frame. Pixels
without a measurement (``inf`` in the file, 7 %) are filled from the nearest measured
pixel for the inputs and left out of the scored hidden region.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import binary_fill_holes, distance_transform_edt, label
from skimage import data
from skimage.filters import threshold_otsu
from skimage.transform import resize

from amodal.adiw.composite import BUCKET_RANGES, paste_occluder
from amodal.adiw.sa1b import load_masks
from amodal.metrics import BUCKETS
from amodal.utils.images import read_image
from amodal.utils.paths import data_samples_dir


def motorcycle(size: int = 112) -> dict[str, np.ndarray]:
    """The centred square of the left image, squashed to ``size``², with its disparity.

    Returns:
        ``image`` ``(S, S, 3)`` float32 in [0, 1]; ``disparity`` ``(S, S)`` float64 (filled);
        ``measured`` ``(S, S)`` bool; ``target`` ``(S, S)`` bool, the motorcycle.
    """

    left, _, disparity = data.stereo_motorcycle()
    h, w = disparity.shape
    side = min(h, w)
    top, start = (h - side) // 2, (w - side) // 2
    left = left[top : top + side, start : start + side]
    disparity = disparity[top : top + side, start : start + side].astype(np.float64)
    measured = np.isfinite(disparity)
    _, (rows, cols) = distance_transform_edt(~measured, return_indices=True)
    filled = disparity[rows, cols]
    image = resize(left, (size, size), anti_aliasing=True).astype(np.float32)
    filled = resize(filled, (size, size), order=1, anti_aliasing=True)
    measured = resize(measured.astype(float), (size, size), order=0, anti_aliasing=False) > 0.5
    near = filled > threshold_otsu(filled)
    components, count = label(near)
    largest = np.argmax(np.bincount(components.ravel())[1:]) + 1 if count else 0
    target = binary_fill_holes(components == largest)
    return {"image": image, "disparity": filled, "measured": measured, "target": target}


def sample_occluders(min_area: float = 0.02) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image, mask)`` of every object in the sample photos that covers ≥ ``min_area`` of its photo."""


    out = []
    for annotations in sorted((data_samples_dir() / "sa1b").glob("*.json")):
        photo = read_image(data_samples_dir() / "images" / f"{annotations.stem}.jpg")
        _, masks = load_masks(annotations)
        out += [(photo, m) for _, m in masks if m.mean() >= min_area]
    return out


def middlebury_items(count: int = 60, size: int = 112, seed: int = 0) -> list[dict]:
    """``count`` occlusions of the motorcycle, buckets cycled easy → mid → hard.

    Items are the evaluation's dicts (``image`` (3, S, S), ``amodal_mask``, ``visible_mask``,
    ``observed_depth``, ``target_depth`` (1, S, S), ``bucket``, ``id``). ``amodal_mask`` is
    the motorcycle less its hidden pixels without a measurement (what is scored);
    ``given_mask`` ``(S, S)`` bool is the whole motorcycle, what a model is given (use
    :func:`amodal.evaluation.mask_quality.given_mask` around a predictor).
    """
    scene = motorcycle(size)
    occluders = sample_occluders()
    rng = np.random.default_rng(seed)
    items, k = [], 0
    while len(items) < count:
        bucket = BUCKETS[len(items) % len(BUCKETS)]
        photo, mask = occluders[int(rng.integers(len(occluders)))]
        composite = paste_occluder(scene["image"], scene["target"], photo.astype(np.float32) / 255.0, mask,
                                   BUCKET_RANGES[bucket], rng)
        k += 1
        if composite is None:
            if k > 20 * count:
                raise RuntimeError("the sample occluders cannot make the requested occlusions")
            continue
        target = scene["disparity"]
        seen = np.where(composite.occluder_mask, 1.1 * target[scene["target"]].max(), target)
        # the range covers the hidden truth too: where the occluder hides the farthest pixels of the
        # photo, the target (holes of the motorcycle's frame among them) may reach below what is seen
        lo, hi = min(seen.min(), target[composite.amodal_mask].min()), seen.max()
        hidden = composite.hidden_mask
        scored = composite.amodal_mask & ~(hidden & ~scene["measured"])

        def as_map(x):
            return torch.from_numpy(np.asarray(x, np.float32))[None]

        items.append({
            "image": torch.from_numpy(composite.image).permute(2, 0, 1).contiguous(),
            "amodal_mask": as_map(scored),
            "visible_mask": as_map(composite.visible_mask),
            "observed_depth": as_map((seen - lo) / (hi - lo)),
            "target_depth": as_map(np.where(composite.amodal_mask, (target - lo) / (hi - lo), (seen - lo) / (hi - lo))),
            "given_mask": composite.amodal_mask,
            "bucket": bucket,
            "id": f"motorcycle-{len(items)}",
        })
    return items
