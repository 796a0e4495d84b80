"""The paper's own data layout: pix2gestalt's release plus the official ADIW labels.

The official training and evaluation read, for a sample id ``<id>`` (an SA-1B image
number), these files under one root (facts of the official loader, ``SAMAmodalDataset``)::

    occlusion/<id>_occlusion.png                 I_o, the composite (RGB)
    whole_mask/<id>_whole_mask.png               M_a, the amodal mask (> 0)
    visible_object_mask/<id>_visible_mask.png    M_vis (> 0)
    depth_da_update_occ/<id>_depth.png           D_o, 16-bit PNG, value / 65535
    depth_da_update_combine/<id>_depth.png       the target amodal depth, 16-bit, / 65535

and the split lists ``data_split/sam/{train,val,...}.txt`` (in the official repository),
one sample a line: ``images/sa_<id>.jpg depth/<id>_depth.png``; the id is read from the
second column. Every raster is then brought to the network's size by
:func:`amodal.models.preprocess.resample` (the paper's mode: a nearest-exact squash to 518² or
512²). The bucket is the visible ratio's (:func:`amodal.metrics.visible_ratio_bucket`)
at the files' resolution.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from amodal.metrics import visible_ratio_bucket
from amodal.models.preprocess import resample
from amodal.utils.images import read_image, read_stored
from amodal.utils.paths import inside

LAYOUT = {
    "image": "occlusion/{id}_occlusion.png",
    "amodal_mask": "whole_mask/{id}_whole_mask.png",
    "visible_mask": "visible_object_mask/{id}_visible_mask.png",
    "observed_depth": "depth_da_update_occ/{id}_depth.png",
    "target_depth": "depth_da_update_combine/{id}_depth.png",
}
DEPTH_SCALE = 65535.0


def read_split(path: str | os.PathLike) -> list[str]:
    """Sample ids of an official split list (``images/sa_<id>.jpg depth/<id>_depth.png`` lines).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line that does not name a ``depth/<id>_depth.png`` (line number given).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split list not found: {path}")
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        columns = line.split()
        name = Path(columns[-1]).name
        if len(columns) < 2 or not name.endswith("_depth.png"):
            raise ValueError(f"{path}:{number}: expected 'images/sa_<id>.jpg depth/<id>_depth.png', got {line!r}")
        ids.append(name[: -len("_depth.png")])
    return ids


def _read_png(path: Path, rgb: bool = False) -> np.ndarray:
    """A PNG as stored (16-bit stays 16-bit), or converted to RGB uint8 ``(H, W, 3)``."""

    if not path.is_file():
        raise FileNotFoundError(f"missing file of the official layout: {path}")
    return read_image(path) if rgb else read_stored(path)


class OfficialAdiwDataset(torch.utils.data.Dataset):
    """The paper's data (pix2gestalt release + official labels) as training / evaluation items.

    Args:
        root: the folder holding the five sub-folders of :data:`LAYOUT`.
        split: an official split list, or ``None`` for every id in ``depth_da_update_combine/``.
        size: network input side (``None``: the files' size).
        mode: ``"paper"`` (default) or ``"keep-aspect"``, see :mod:`amodal.models.preprocess`.

    Items are dicts like :class:`amodal.adiw.dataset.AdiwDataset`'s: ``image`` (3, S, S) in
    [0, 1]; ``observed_depth``, ``target_depth``, ``amodal_mask``, ``visible_mask`` (1, S, S);
    ``bucket``, ``visible_ratio`` and ``id``.

    Raises:
        FileNotFoundError: ``root`` or the split list is missing (a missing file of a sample
            is named when that sample is read).
    """

    def __init__(self, root: str | os.PathLike, split: str | os.PathLike | None = None, size: int | None = 518,
                 mode: str = "paper"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"official ADIW folder not found: {self.root}")
        if split is not None:
            self.ids = read_split(split)
        else:
            labels = self.root / Path(LAYOUT["target_depth"]).parent
            if not labels.is_dir():
                raise FileNotFoundError(f"{labels} not found: is {self.root} the official layout ({', '.join(LAYOUT.values())})?")
            self.ids = sorted(p.name[: -len("_depth.png")] for p in labels.glob("*_depth.png"))
        self.size, self.mode = size, mode

    def __len__(self) -> int:
        return len(self.ids)

    def paths(self, index: int) -> dict[str, Path]:
        """The five files of sample ``index``."""
        return {key: inside(self.root, pattern.format(id=self.ids[index]), f"sample {self.ids[index]}")
                for key, pattern in LAYOUT.items()}

    def __getitem__(self, index: int) -> dict:
        paths = self.paths(index)
        image = _read_png(paths["image"], rgb=True)
        maps = {}
        for key in ("amodal_mask", "visible_mask"):
            raw = _read_png(paths[key])
            maps[key] = torch.from_numpy((raw.max(-1) if raw.ndim == 3 else raw) > 0).float()[None]
        for key in ("observed_depth", "target_depth"):
            raw = _read_png(paths[key]).astype(np.float64)
            maps[key] = torch.from_numpy(raw / DEPTH_SCALE).float()[None]
        shapes = {k: tuple(v.shape[-2:]) for k, v in maps.items()} | {"image": image.shape[:2]}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"sample {self.ids[index]}: rasters of different sizes {shapes}")
        amodal = maps["amodal_mask"] > 0
        ratio = float((maps["visible_mask"] > 0)[amodal].float().mean()) if amodal.any() else 0.0
        item = {"image": torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0, **maps,
                "bucket": visible_ratio_bucket(ratio), "visible_ratio": ratio, "id": self.ids[index]}
        return resample(item, self.size, self.mode) if self.size is not None else item
