"""Which sample each training step reads, as a pure function of the step: exact resume, any world size.

A run is a sequence of *positions* 0, 1, 2, … — the global sample counter. Optimiser
step ``s`` with effective batch ``B`` reads positions ``s·B … s·B + B − 1``; on ``W``
processes with ``b`` samples per forward pass, micro-batch ``m`` of rank ``r`` reads the
``b`` positions starting at ``s·B + (m·W + r)·b``. So the samples of a step do not
depend on how they are spread over processes and accumulation, and a resumed run needs
only the step to know where it is in the data — no sampler state to save.

Position → item: a finite dataset is walked epoch by epoch, each epoch in its own
permutation seeded by ``(seed, epoch)``; an endless stream (``len`` is ``None``) reads
item ``position``. The horizontal flip of a position is drawn from its own generator
seeded by ``(seed, position)``, so it is the same on every rank and after a resume.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

_FLIP_STREAM = 1  # separates the flip draws from the epoch permutations


class SampleOrder:
    """Maps global positions to ``(item index, flip)``.

    Args:
        length: items in the dataset, or ``None`` for an endless stream.
        seed: the run's seed.
        flip_p: probability of a horizontal flip.
    """

    def __init__(self, length: int | None, seed: int, flip_p: float = 0.0):
        if length is not None and length < 1:
            raise ValueError("the training data holds no sample")
        if not 0 <= flip_p <= 1:
            raise ValueError(f"flip_p must lie in [0, 1], got {flip_p}")
        self.length, self.seed, self.flip_p = length, seed, flip_p
        self._epoch, self._permutation = -1, None

    def item(self, position: int) -> int:
        """The dataset index read at ``position``."""
        if self.length is None:
            return position
        epoch, offset = divmod(position, self.length)
        if epoch != self._epoch:
            self._epoch = epoch
            self._permutation = np.random.default_rng([self.seed, epoch]).permutation(self.length)
        return int(self._permutation[offset])

    def flip(self, position: int) -> bool:
        """Whether the sample at ``position`` is flipped horizontally."""
        if self.flip_p == 0:
            return False
        return bool(np.random.default_rng([self.seed, _FLIP_STREAM, position]).random() < self.flip_p)


def micro_batch_positions(step: int, micro: int, rank: int, world_size: int, batch_size: int, batch_per_device: int) -> list[int]:
    """The positions that micro-batch ``micro`` of process ``rank`` reads at optimiser step ``step``."""
    start = step * batch_size + (micro * world_size + rank) * batch_per_device
    return list(range(start, start + batch_per_device))


def collate(data: Sequence[dict], order: SampleOrder, positions: list[int]) -> dict[str, Any]:
    """Stack the items at ``positions`` into a batch, each flipped as ``order`` says.

    Items are dicts; tensors of shape ``(C, H, W)`` are flipped along ``W`` and stacked
    to ``(B, C, H, W)``; other values are gathered in lists.
    """
    items = []
    for position in positions:
        item = dict(data[order.item(position)])
        if order.flip(position):
            item = {k: v.flip(-1) if isinstance(v, torch.Tensor) and v.ndim == 3 else v for k, v in item.items()}
        items.append(item)
    return {
        key: torch.stack([i[key] for i in items]) if isinstance(items[0][key], torch.Tensor) else [i[key] for i in items]
        for key in items[0]
    }
