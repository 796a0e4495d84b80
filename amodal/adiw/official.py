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

:func:`write_official` writes samples of ours in this layout (with split lists), so that
code meant for the paper's data can be run end to end on a handful of samples.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from amodal.adiw.paper_label import to_uint16
from amodal.adiw.sample import AdiwSample
from amodal.metrics import visible_ratio_bucket
from amodal.models.preprocess import resample
from amodal.utils.atomic import atomic_write, atomic_write_text
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


def split_line(sample_id: str) -> str:
    """The line of an official split list that names ``sample_id``."""
    return f"images/sa_{sample_id}.jpg depth/{sample_id}_depth.png"


def write_official(samples: Iterable[AdiwSample], root: str | os.PathLike,
                   splits: dict[str, Sequence[str]] | None = None) -> list[str]:
    """Write ``samples`` in the official layout under ``root``, and split lists.

    Per sample, the five files of :data:`LAYOUT` at the sample's own size: the composite as
    RGB PNG, the masks as 8-bit PNG (255 inside), ``D_o`` and the target as 16-bit PNG
    (``round(value · 65535)``, clipped to [0, 1] first, where the official script wraps).

    Args:
        samples: :class:`~amodal.adiw.sample.AdiwSample` s; their ids become the file ids
            (no whitespace, no ``/``).
        root: the folder (made if missing).
        splits: list name → sample ids, written as ``root/data_split/sam/<name>.txt``.

    Returns:
        The ids written, in order.

    Raises:
        ValueError: an id that cannot be a file id, or a split naming an id not written.
    """
    root = Path(root)
    written = []
    for sample in samples:
        sid = sample.sample_id
        if not sid or any(c.isspace() for c in sid) or "/" in sid or "\\" in sid:
            raise ValueError(f"sample id {sid!r} cannot name files of the official layout")
        rasters = {"image": np.asarray(sample.image, np.uint8),
                   "amodal_mask": np.asarray(sample.amodal_mask, bool).astype(np.uint8) * 255,
                   "visible_mask": np.asarray(sample.visible_mask, bool).astype(np.uint8) * 255,
                   "observed_depth": to_uint16(np.clip(sample.observed_depth, 0, 1)),
                   "target_depth": to_uint16(np.clip(sample.target_depth, 0, 1))}
        for key, array in rasters.items():
            path = root / LAYOUT[key].format(id=sid)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda temporary, a=array: Image.fromarray(a).save(temporary, format="PNG"))
        written.append(sid)
    for name, ids in (splits or {}).items():
        unknown = sorted(set(ids) - set(written))
        if unknown:
            raise ValueError(f"split {name!r} names samples that were not written: {unknown}")
        path = root / "data_split" / "sam" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(split_line(sid) + "\n" for sid in ids))
    return written


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
