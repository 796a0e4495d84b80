"""A ``torch.utils.data.Dataset`` over built ADIW shards, for training (paper §4.1).

Each item is one sample resized to ``size × size`` (518 by default: Amodal-DAV2
squashes every input to 518², aspect not kept), with a random horizontal flip — the
only augmentation of the paper. Images and depth maps are resized bilinearly, masks
by nearest neighbour (a mask stays binary, and the visible mask stays inside the
amodal mask).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from amodal.adiw.build import manifest_records
from amodal.adiw.sample import read_sample


class AdiwDataset(torch.utils.data.Dataset):
    """Samples of one or more built ADIW folders.

    Args:
        roots: a dataset folder (with ``shard-*/manifest.jsonl``) or a list of them.
        size: output side (``None``: keep each sample's size; batching then needs equal sizes).
        hflip: flip horizontally with probability ½ (training); the draw uses torch's RNG,
            so seeding torch (or the DataLoader's worker seed) makes it reproducible.
        buckets: keep only these buckets (default all).

    Items are dicts: ``image`` (3, S, S) float32 in [0, 1]; ``observed_depth``,
    ``amodal_mask``, ``visible_mask``, ``target_depth`` (1, S, S) float32; ``bucket``
    and ``id`` strings.
    """

    def __init__(self, roots, size: int | None = 518, hflip: bool = False, buckets=None):
        roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
        self.items = []
        for root in roots:
            if not Path(root).is_dir():
                raise FileNotFoundError(f"ADIW folder not found: {root}")
            for shard, record in manifest_records(root):
                if record["type"] == "sample" and (buckets is None or record["bucket"] in buckets):
                    self.items.append((shard, record))
        self.size = size
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        shard, record = self.items[index]
        s = read_sample(shard, record)
        image = torch.from_numpy(s.image).permute(2, 0, 1).float() / 255.0
        maps = torch.from_numpy(np.stack([s.observed_depth, s.target_depth])).float()
        masks = torch.from_numpy(np.stack([s.amodal_mask, s.visible_mask])).float()
        if self.size is not None:
            shape = (self.size, self.size)
            image = F.interpolate(image[None], shape, mode="bilinear", align_corners=False)[0].clamp(0, 1)
            maps = F.interpolate(maps[None], shape, mode="bilinear", align_corners=False)[0].clamp(0, 1)
            masks = F.interpolate(masks[None], shape, mode="nearest")[0]
            masks[1] *= masks[0]
        if self.hflip and torch.rand(()) < 0.5:
            image, maps, masks = image.flip(-1), maps.flip(-1), masks.flip(-1)
        return {
            "image": image,
            "observed_depth": maps[0:1],
            "target_depth": maps[1:2],
            "amodal_mask": masks[0:1],
            "visible_mask": masks[1:2],
            "bucket": s.bucket,
            "id": s.sample_id,
        }
