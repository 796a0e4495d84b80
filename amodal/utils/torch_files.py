"""Reading PyTorch's pickle files (``.pt``, ``.pth``, ``.ckpt``) without running code from them.

A PyTorch file is a pickle, and a pickle may name any function to call while it is read:
``torch.load(path, weights_only=False)`` on a ``checkpoint.pt`` whose pickle names
``os.system`` runs that command. So every ``torch.load`` in this repository passes
``weights_only=True``: the unpickler then builds tensors and plain values only (dicts,
lists, tuples, strings, numbers, ``None``) and refuses every other global. A file that
truly needs more (an official checkpoint holding numpy arrays) gets exactly the globals
it needs through :func:`torch.serialization.safe_globals` (:data:`NUMPY_ARRAY_GLOBALS`),
never ``weights_only=False``. Our own weights are safetensors, which hold no code at all.
``tests/utils/test_torch_files.py`` reads every call in the tree and fails on one that
does not say ``weights_only=True``.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray

# What a pickled numpy array names: its class, its dtype and the function that rebuilds it.
# An array of Python objects would still be read by the same restricted unpickler.
NUMPY_ARRAY_GLOBALS = [np.ndarray, np.dtype, _MULTIARRAY._reconstruct,
                       *(type(np.dtype(name)) for name in ("float16", "float32", "float64", "uint32", "int64"))]


def load_weights_only(path: str | Path, allow: Sequence = (), mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU, with exactly ``allow``'s globals added.

    Args:
        path: a file written by ``torch.save``.
        allow: further globals the file may name (e.g. :data:`NUMPY_ARRAY_GLOBALS`), each a
            class or function, or a pair ``(stand-in, "module.Name")`` that gives the name the
            file uses a harmless object of ours instead of importing it.
        mmap: map the file instead of reading it: tensors are read from disk when used, so a
            training checkpoint of many gigabytes costs only the memory of what is kept
            (files in the zip format ``torch.save`` writes since PyTorch 1.6; an older file
            is read whole).

    Returns:
        What the file holds: tensors in plain containers.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file names code or any global outside ``allow`` (it is not read,
            nothing in it runs), or is not a PyTorch file at all; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except Exception as error:  # pickle errors come in many types
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        # torch's first line suggests weights_only=False: pass on only the line that says what was refused
        detail = next((line for line in lines if "GLOBAL" in line or line.startswith("Unsupported")),
                      f"{type(error).__name__}: {lines[0] if lines else 'unreadable'}")
        raise ValueError(f"{path} was not loaded: it is not a PyTorch file of tensors and plain values ({detail}); "
                         "a pickle may run code, so nothing else is read from one") from error
