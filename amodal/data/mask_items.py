"""Data for the amodal-mask completer: training crops, and objects whose whole mask is known.

- :class:`MaskCrops` turns items of a synthetic stream or pool (:mod:`amodal.data.streams`)
  into what :class:`~amodal.models.mask_completer.MaskCompleter` trains on: the crop around
  ``M_vis`` (:func:`~amodal.models.mask_completer.crop_box`) as the network's input, and the
  same crop of ``M_a`` as the target.
- :func:`synth_mask_items`: held-out synthetic occlusions at full size, with exact ``M_a``.
- :func:`pasted_object_items`: real photos. The complete objects of the sample photos
  (``data_samples/``, SA-1B-format masks) with another of them pasted over each, as the ADIW
  builder pastes (:func:`amodal.adiw.composite.paste_occluder`, buckets cycled easy → mid →
  hard). The target was whole before the paste, so its SA-1B mask *is* the true ``M_a``.

Evaluation items are dicts of numpy arrays at the photo's own size: ``image`` ``(H, W, 3)``
uint8, ``amodal_mask``, ``visible_mask``, ``occluder_mask`` ``(H, W)`` bool; ``bucket``, ``id``
and ``visible_ratio``.
"""
from __future__ import annotations

import numpy as np
import torch

from amodal.adiw.composite import BUCKET_RANGES, paste_occluder
from amodal.adiw.objects import ObjectFilter, select_complete_objects
from amodal.adiw.sources import find_sources, load_source
from amodal.data.streams import SynthStream
from amodal.metrics import BUCKETS
from amodal.models.mask_completer import (
    TINY_COMPLETER,
    MaskCompleterConfig,
    completer_inputs,
    crop_box,
    cut,
    resize_maps,
)
from amodal.utils.paths import data_samples_dir

# The sample photos' masks came from a random walker, not SAM, and score lower on SAM's own
# quality fields (README of data_samples/: stability 0.74–0.98); those floors are for SAM's
# masks. The shape tests (off the border, one piece, solid) stay as the builder has them.
SAMPLE_OBJECT_FILTER = ObjectFilter(min_predicted_iou=0.0, min_stability_score=0.0)


class MaskCrops:
    """Completer training items from items with ``image``, ``visible_mask`` and ``amodal_mask``.

    Args:
        items: a dataset or endless stream of the synthetic items (``image`` ``(3, H, W)``,
            masks ``(1, H, W)``).
        config: the network's crop (``margin``, ``input_size``).
        count: make a finite set of the first ``count`` items, their crops made on first use
            and kept (about 0.1 MB an item at 64², against 0.45 MB for a 128² scene: the
            scenes themselves are not kept). ``None``: every item of ``items``, made anew
            each time (``len`` is that of ``items``; a stream's raises ``TypeError``).

    Items are dicts: ``inputs`` ``(5, S, S)`` (:func:`~amodal.models.mask_completer.completer_inputs`);
    ``visible_mask`` and ``amodal_mask`` ``(1, S, S)`` float32 in [0, 1], the crop of each mask
    resized with antialiasing (so a pixel on the outline holds the fraction covered);
    ``bucket`` and ``id`` as the source item's.
    """

    def __init__(self, items, config: MaskCompleterConfig = TINY_COMPLETER, count: int | None = None):
        if count is not None and count < 1:
            raise ValueError(f"a pool of crops needs count ≥ 1, got {count}")
        self.items, self.config, self.count = items, config, count
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.items) if self.count is None else self.count

    def __getitem__(self, index: int) -> dict:
        if self.count is None:
            return self._crop(self.items[index])
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} out of range for a pool of {self.count}")
        if index not in self._cache:
            self._cache[index] = self._crop(self.items[index])
        return self._cache[index]

    def _crop(self, item: dict) -> dict:
        image = item["image"].permute(1, 2, 0).numpy()
        visible = item["visible_mask"][0].numpy() > 0.5
        amodal = item["amodal_mask"][0].numpy() > 0.5
        box = crop_box(visible, self.config.margin)
        masks = np.stack([cut(visible, box)[0], cut(amodal, box)[0]]).astype(np.float32)
        visible_crop, amodal_crop = resize_maps(torch.from_numpy(masks), self.config.input_size)
        return {
            "inputs": completer_inputs(image, visible, box, self.config.input_size),
            "visible_mask": visible_crop[None].clamp(0, 1),
            "amodal_mask": amodal_crop[None].clamp(0, 1),
            "bucket": item["bucket"],
            "id": item["id"],
        }


def synth_mask_items(count: int, seed: int = 2026, size: int = 128, shapes: str = "simple",
                     realism: str = "plain") -> list[dict]:
    """The first ``count`` occlusions of ``SynthStream(seed, size, shapes=shapes, realism=realism)`` as evaluation items.

    ``occluder_mask`` is the occluder's visible pixels.
    """
    if count < 1:
        raise ValueError(f"count must be ≥ 1, got {count}")
    stream = SynthStream(seed, size, shapes=shapes, with_occluder=True, realism=realism)
    items = []
    for k in range(count):
        item = stream[k]
        items.append({
            "image": np.clip(np.rint(item["image"].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8),
            "amodal_mask": item["amodal_mask"][0].numpy() > 0.5,
            "visible_mask": item["visible_mask"][0].numpy() > 0.5,
            "occluder_mask": item["occluder_mask"][0].numpy() > 0.5,
            "bucket": item["bucket"],
            "id": item["id"],
            "visible_ratio": float((item["visible_mask"] > 0.5).sum() / (item["amodal_mask"] > 0.5).sum()),
        })
    return items


def sample_objects(folder=None, object_filter: ObjectFilter = SAMPLE_OBJECT_FILTER) -> list[dict]:
    """The complete objects of the sample photos: ``{"photo", "image", "mask", "id"}``, in name order.

    Args:
        folder: holding ``images/`` and ``sa1b/`` (default ``data_samples/``).
        object_filter: the builder's filter, without its depth test (there is no depth here).
    """
    folder = data_samples_dir() if folder is None else folder
    objects = []
    for source in find_sources(f"{folder}/images", f"{folder}/sa1b"):
        image, masks = load_source(source)
        kept, _ = select_complete_objects(masks, None, object_filter)
        objects += [{"photo": source.name, "image": image, "mask": o.mask, "id": o.annotation_id} for o in kept]
    return objects


def pasted_object_items(count: int, seed: int = 0, folder=None, attempts: int = 50) -> list[dict]:
    """``count`` real occlusions: a complete object of a sample photo with another one pasted over it.

    Item ``i`` takes the bucket ``BUCKETS[i % 3]`` and the target ``i // 3`` (cycling over
    the objects, so each is used about equally in each bucket); its occluder is drawn from the
    other complete objects of every sample photo and placed by
    :func:`~amodal.adiw.composite.paste_occluder` at a visible ratio in the bucket's range.

    Args:
        count: items to make.
        seed: seeds every draw.
        folder: see :func:`sample_objects`.
        attempts: occluders tried for one item before giving up.

    Raises:
        RuntimeError: fewer than two complete objects, or no occluder that fits after ``attempts``.
    """
    if count < 1:
        raise ValueError(f"count must be ≥ 1, got {count}")
    objects = sample_objects(folder)
    if len(objects) < 2:
        raise RuntimeError(f"pasted occlusions need two complete objects; the sample photos have {len(objects)}")
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        bucket = BUCKETS[i % len(BUCKETS)]
        t = (i // len(BUCKETS)) % len(objects)
        target = objects[t]
        for _ in range(attempts):
            o = int(rng.integers(len(objects) - 1))
            occluder = objects[o + 1 if o >= t else o]
            composite = paste_occluder(target["image"], target["mask"], occluder["image"], occluder["mask"],
                                       BUCKET_RANGES[bucket], rng)
            if composite is not None:
                break
        else:
            raise RuntimeError(f"no occluder fits over {target['photo']} object {target['id']} in bucket {bucket}")
        items.append({
            "image": composite.image,
            "amodal_mask": composite.amodal_mask,
            "visible_mask": composite.visible_mask,
            "occluder_mask": composite.occluder_mask,
            "bucket": bucket,
            "id": f"{target['photo']}-{target['id']}-{i}",
            "visible_ratio": composite.visible_ratio,
        })
    return items
