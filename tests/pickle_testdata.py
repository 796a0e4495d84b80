"""A hostile ``checkpoint.pt``: a pickle that makes a folder when it is read with ``weights_only=False``.

The folder is the side effect a test can observe; a real attack would name ``os.system``.
"""
import os

import torch


class _MakesFolder:
    """Unpickled, this is ``os.mkdir(marker)``: code named by the file, run by whoever reads it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def write_hostile_checkpoint(path, marker):
    """``torch.save`` a dict shaped like a training checkpoint whose ``model`` entry runs ``os.mkdir(marker)``."""
    record = {"step": 1, "recipe": {"name": "amodal-dav2-s-paper"}, "model": _MakesFolder(marker),
              "optimizer": {}, "scheduler": {}, "rng": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(record, path)
    return path
