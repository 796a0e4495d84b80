"""A ``torch.utils.data.Dataset`` over built ADIW shards, for training (paper §4.1).

Each item is one sample brought to ``size × size`` by :func:`amodal.models.preprocess.resample`
(the paper's mode by default: every raster squashed to 518² with nearest-exact, as the
official loader does; or ``"keep-aspect"``), with an optional random horizontal flip —
the only augmentation of the paper. The trainer flips by itself
(:mod:`amodal.training.order`), so it reads the dataset with ``hflip=False``.

The shards keep no occluder mask. Given ``photos``, the folder of the photos the dataset
was built from, :func:`occluder_mask` recovers it for the explorer: the pixels inside the
recorded placement box where the composite differs from its source photo, resized as the
builder did (``build.json``'s size).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from amodal.adiw.official import OfficialAdiwDataset
from amodal.adiw.sample import AdiwSample, read_sample
from amodal.adiw.shards import manifest_records
from amodal.adiw.sources import resize_photo
from amodal.models.preprocess import resample
from amodal.utils.images import read_image
from amodal.utils.paths import inside


class AdiwDataset(torch.utils.data.Dataset):
    """Samples of one or more built ADIW folders.

    Args:
        roots: a dataset folder (with ``shard-*/manifest.jsonl``) or a list of them.
        size: output side (``None``: keep each sample's size; batching then needs equal sizes).
        hflip: flip horizontally with probability ½ (training); the draw uses torch's RNG,
            so seeding torch (or the DataLoader's worker seed) makes it reproducible.
        buckets: keep only these buckets (default all).
        mode: ``"paper"`` or ``"keep-aspect"`` (see :mod:`amodal.models.preprocess`).
        photos: the folder of the photos the dataset was built from; items then also carry
            ``occluder_mask`` (1, S, S) where it can be recovered (:func:`occluder_mask`).

    Items are dicts: ``image`` (3, S, S) float32 in [0, 1]; ``observed_depth``,
    ``amodal_mask``, ``visible_mask``, ``target_depth`` (1, S, S) float32; ``bucket``
    and ``id`` strings.
    """

    def __init__(self, roots, size: int | None = 518, hflip: bool = False, buckets=None, mode: str = "paper",
                 photos: str | os.PathLike | None = None):
        roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
        self.items = []
        self.build_sizes = {}
        for root in roots:
            if not Path(root).is_dir():
                raise FileNotFoundError(f"ADIW folder not found: {root}")
            settings = Path(root) / "build.json"
            build_size = json.loads(settings.read_text()).get("config", {}).get("size") if settings.is_file() else None
            for shard, record in manifest_records(root):
                if record["type"] == "sample" and (buckets is None or record["bucket"] in buckets):
                    self.items.append((shard, record))
                    self.build_sizes[shard] = build_size
        self.size = size
        self.hflip = hflip
        self.mode = mode
        self.photos = None if photos is None else Path(photos)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        shard, record = self.items[index]
        s = read_sample(shard, record)
        def map_(x):
            return torch.from_numpy(np.asarray(x, np.float32))[None]

        item = {
            "image": torch.from_numpy(s.image).permute(2, 0, 1).float() / 255.0,
            "observed_depth": map_(s.observed_depth),
            "target_depth": map_(s.target_depth),
            "amodal_mask": map_(s.amodal_mask),
            "visible_mask": map_(s.visible_mask),
            "bucket": s.bucket,
            "id": s.sample_id,
        }
        if self.photos is not None:
            occluder = occluder_mask(s, self.photos, self.build_sizes[shard])
            if occluder is not None:
                item["occluder_mask"] = map_(occluder)
        if self.size is not None:
            item = resample(item, self.size, self.mode)
        if self.hflip and torch.rand(()) < 0.5:
            item = {k: v.flip(-1) if isinstance(v, torch.Tensor) else v for k, v in item.items()}
        return item


def open_dataset(root, size: int | None = 518, split=None, mode: str = "paper", photos=None):
    """A folder of ADIW data as items: our shards (:class:`AdiwDataset`, with ``photos`` to
    recover the occluders) or the paper's layout (:class:`amodal.adiw.official.OfficialAdiwDataset`,
    with its optional ``split`` list).

    Raises:
        FileNotFoundError: no such folder, or neither ``shard-*/`` nor ``whole_mask/`` in it.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--data: no such folder: {root} (or use 'synth')")
    if (root / "whole_mask").is_dir():
        return OfficialAdiwDataset(root, split, size=size, mode=mode)
    if any(root.glob("shard-*")):
        if split is not None:
            raise ValueError(f"a split list ({split}) applies to the official layout only; {root} holds our shards, "
                             "which take every sample (build a folder per split instead)")
        return AdiwDataset(root, size=size, mode=mode, photos=photos)
    raise FileNotFoundError(f"--data {root}: neither ADIW shards (shard-*/) nor the official layout (whole_mask/, ...)")


def occluder_mask(sample: AdiwSample, photos: str | os.PathLike, build_size: int | None = None) -> np.ndarray | None:
    """The occluder's visible pixels (H, W) bool of a built sample, or ``None`` where they cannot be recovered.

    They are the pixels inside the sample's recorded placement box where its composite
    differs from the source photo (``photos / provenance["image_file"]``), the photo first
    resized as the builder resized it (longer side ``build_size``).
    """
    box = sample.provenance.get("placement")
    if not box or not sample.provenance.get("image_file"):
        return None
    photo = inside(photos, sample.provenance["image_file"], f"sample {sample.sample_id}: source photo")
    if not photo.is_file():
        return None
    original = read_image(photo)
    if build_size is not None:
        original = resize_photo(original, [], build_size)[0]
    if original.shape != sample.image.shape:
        return None
    in_box = np.zeros(sample.image.shape[:2], bool)
    in_box[max(box["top"], 0):box["top"] + box["height"], max(box["left"], 0):box["left"] + box["width"]] = True
    return in_box & (original != sample.image).any(-1)
