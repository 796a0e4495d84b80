"""A training checkpoint: everything a run needs to continue bit for bit, written atomically.

One file, ``checkpoint.pt``, holds the model, the optimiser and the schedule, the step,
every random generator's state (Python, numpy, torch's CPU and CUDA generators) and the
recipe the run was started with. The data position is not stored: it is a function of
the step (:mod:`amodal.training.order`). The file is replaced atomically, so a run
killed while saving keeps the previous checkpoint.
"""
from __future__ import annotations

import random
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amodal.utils.atomic import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """The state of every generator a training step may draw from."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
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


def load_checkpoint(folder: str | Path, recipe) -> dict[str, Any]:
    """Read ``folder/checkpoint.pt`` for a resume of ``recipe``.

    Raises:
        FileNotFoundError: no checkpoint in ``folder``.
        ValueError: the checkpoint was written by a run of another recipe (its
            differing fields are named): resuming it would mix two runs.
    """
    path = Path(folder) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist")
    record = torch.load(path, map_location="cpu", weights_only=False)
    # A field added to Recipe after the checkpoint was written has its default there
    # (fields are only ever added with a default that keeps older recipes as they were).
    defaults = {f.name: f.default for f in fields(recipe) if f.default is not MISSING}
    theirs, ours = {**defaults, **record["recipe"]}, asdict(recipe)
    changed = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k) and k != "max_steps")
    if changed:
        detail = ", ".join(f"{k}: {theirs.get(k)!r} → {ours.get(k)!r}" for k in changed)
        raise ValueError(f"{path} was written by recipe {theirs.get('name')!r} with other settings ({detail}); "
                         "resume with the same recipe, or start a new output folder")
    return record
