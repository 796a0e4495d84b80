"""A training checkpoint: everything a run needs to continue bit for bit, written atomically.

One file, ``checkpoint.pt``, holds the model, the optimiser and the schedule, the step,
every random generator's state (Python, numpy, torch's CPU and CUDA generators) and the
recipe the run was started with. The data position is not stored: it is a function of
the step (:mod:`amodal.training.order`). The file is replaced atomically, so a run
killed while saving keeps the previous checkpoint.

The file holds tensors and plain values only (numpy's generator state is stored as a
tuple of ints), and is read with ``weights_only=True``
(:func:`amodal.utils.torch_files.load_weights_only`): a ``checkpoint.pt`` that someone
else put in a run folder cannot run code on ``--resume`` or when ``ablate`` reuses it.
"""
from __future__ import annotations

import random
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amodal.utils.atomic import atomic_write
from amodal.utils.torch_files import NUMPY_ARRAY_GLOBALS, load_weights_only

CHECKPOINT_NAME = "checkpoint.pt"
RECORD_KEYS = ("step", "recipe", "model", "optimizer", "scheduler", "rng")


def rng_state() -> dict[str, Any]:
    """The state of every generator a training step may draw from, in tensors and plain values."""
    kind, key, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state = {
        "python": random.getstate(),  # (version, tuple of ints, None or float)
        "numpy": (str(kind), [int(k) for k in key], int(position), int(has_gauss), float(cached_gaussian)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (numpy's key as a list, or as an array in older files)."""
    random.setstate(state["python"])
    kind, key, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((kind, np.asarray(key, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer, scheduler, step: int, recipe) -> Path:
    """Write ``folder/checkpoint.pt`` atomically; returns its path."""
    record = {
        "step": step,
        "recipe": asdict(recipe),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
    }
    return atomic_write(Path(folder) / CHECKPOINT_NAME, lambda path: torch.save(record, path))


def read_training_checkpoint(folder: str | Path) -> dict[str, Any]:
    """``folder/checkpoint.pt`` as written by :func:`save_checkpoint`, read without running code from it.

    Raises:
        FileNotFoundError: no checkpoint in ``folder``.
        ValueError: the file holds code or anything but tensors and plain values (it is not
            read), or lacks a training checkpoint's keys.
    """
    path = Path(folder) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist")
    # Checkpoints written before the numpy state was stored as ints hold it as a uint32 array.
    record = load_weights_only(path, allow=NUMPY_ARRAY_GLOBALS)
    missing = [key for key in RECORD_KEYS if not isinstance(record, dict) or key not in record]
    if missing:
        raise ValueError(f"{path} is not a training checkpoint (missing {', '.join(missing)}); "
                         "train into another folder, or delete the file")
    return record


def recipe_differences(stored: dict[str, Any], recipe, ignore: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """The fields of ``recipe`` whose value differs in ``stored`` (a checkpoint's ``asdict`` of its recipe).

    A field added to the recipe class after the checkpoint was written counts with its
    default there (fields are only ever added with a default that keeps older recipes as
    they were).

    Returns:
        ``{field: (stored value, recipe's value)}``, sorted by field, without ``ignore``.
    """
    defaults = {f.name: f.default for f in fields(recipe) if f.default is not MISSING}
    theirs, ours = {**defaults, **stored}, asdict(recipe)
    return {k: (theirs.get(k), ours.get(k)) for k in sorted(set(theirs) | set(ours))
            if theirs.get(k) != ours.get(k) and k not in ignore}


def describe_differences(changed: dict[str, tuple[Any, Any]]) -> str:
    """``"lr: 0.001 → 0.002, max_steps: 4 → 8"`` for :func:`recipe_differences`' result."""
    return ", ".join(f"{k}: {theirs!r} → {ours!r}" for k, (theirs, ours) in changed.items())


def load_checkpoint(folder: str | Path, recipe) -> dict[str, Any]:
    """Read ``folder/checkpoint.pt`` for a resume of ``recipe`` (its ``max_steps`` may differ: a run may be extended).

    Raises:
        FileNotFoundError: no checkpoint in ``folder``.
        ValueError: the checkpoint was written by a run of another recipe (its
            differing fields are named): resuming it would mix two runs; or the file is not
            a checkpoint of tensors and plain values (:func:`read_training_checkpoint`).
    """
    record = read_training_checkpoint(folder)
    changed = recipe_differences(record["recipe"], recipe, ignore=("max_steps",))
    if changed:
        raise ValueError(f"{Path(folder) / CHECKPOINT_NAME} was written by recipe {record['recipe'].get('name')!r} "
                         f"with other settings ({describe_differences(changed)}); "
                         "resume with the same recipe, or start a new output folder")
    return record
