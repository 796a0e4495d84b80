"""Training data for :func:`amodal.training.loop.train`: an endless, seeded stream of synthetic occlusions.

Item ``k`` of :class:`SynthStream` is the synthetic occlusion of seed ``(seed, k)``
(:func:`amodal.adiw.synthetic.synth_occlusion`), its bucket cycled easy → mid → hard, with
the *exact* truth: ``observed_depth`` is the composite's true disparity, min-max normalised
(what a perfect relative-depth model would give as ``D_o``), and ``target_depth`` the
target's full surface in the same frame. The same ``k`` always gives the same item, so the
stream needs no state to resume, and held-out sets are other seeds.

:class:`SynthPool` is the first ``count`` items of a stream, rendered once and kept in
memory: a finite training set (walked in shuffled epochs) for a CPU, where rendering
every step's scenes anew would cost more than the step itself.
"""
from __future__ import annotations

import numpy as np
import torch

from amodal.composite import BUCKET_RANGES
from amodal.metrics import BUCKETS


class SynthStream:
    """Endless synthetic training items; ``len()`` raises ``TypeError`` (a stream, not a set).

    Args:
        seed: the stream's seed; held-out sets use another one.
        size: image side (a multiple of 14 for Amodal-DAV2).
        buckets: visible-ratio buckets to cycle through.
        with_occluder: items also carry ``occluder_mask`` (1, S, S), the occluder's visible
            pixels (for the explorer; training does not read it).

    Items are dicts: ``image`` (3, S, S) float32 in [0, 1]; ``amodal_mask``, ``visible_mask``,
    ``observed_depth``, ``target_depth`` (1, S, S) float32; ``bucket`` and ``id`` strings.
    """

    def __init__(self, seed: int, size: int = 112, buckets: tuple[str, ...] = BUCKETS, with_occluder: bool = False):
        unknown = sorted(set(buckets) - set(BUCKET_RANGES))
        if unknown or not buckets:
            raise ValueError(f"buckets must be a non-empty subset of {sorted(BUCKET_RANGES)}, got {buckets}")
        self.seed, self.size, self.buckets = seed, size, tuple(buckets)
        self.with_occluder = with_occluder

    def __len__(self):
        raise TypeError("SynthStream is endless")

    def __getitem__(self, index: int) -> dict:
        from amodal.adiw.synthetic import synth_occlusion

        if index < 0:
            raise IndexError(f"index must be ≥ 0, got {index}")
        bucket = self.buckets[index % len(self.buckets)]
        seed = int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0])
        occlusion = synth_occlusion(seed, self.size, BUCKET_RANGES[bucket])
        composite = occlusion.composite
        disparity = 1.0 / composite.depth
        observed = (disparity - disparity.min()) / (disparity.max() - disparity.min())

        def map_(x):
            return torch.from_numpy(np.asarray(x, np.float32))[None]

        item = {
            "image": torch.from_numpy(np.asarray(composite.image, np.float32)).permute(2, 0, 1).contiguous(),
            "amodal_mask": map_(occlusion.amodal_mask),
            "visible_mask": map_(occlusion.visible_mask),
            "observed_depth": map_(observed),
            "target_depth": map_(occlusion.exact_target),
            "bucket": bucket,
            "id": f"synth-{self.seed}-{index}",
        }
        if self.with_occluder:
            item["occluder_mask"] = map_(occlusion.occluder_mask)
        return item


class SynthPool:
    """The first ``count`` items of ``SynthStream(seed, size, buckets)``, rendered on first use.

    A finite dataset (``len`` = ``count``), so the trainer walks it in shuffled epochs.
    Items are rendered lazily and cached: a resumed run renders what it reads again,
    identically. About 35 ms an item at 112² on one core (1,500 items ≈ 1 min), and
    0.3 MB an item in memory.
    """

    def __init__(self, seed: int, count: int, size: int = 112, buckets: tuple[str, ...] = BUCKETS):
        if count < 1:
            raise ValueError(f"a synthetic pool needs count ≥ 1, got {count}")
        self.stream = SynthStream(seed, size, buckets)
        self.count = count
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} out of range for a pool of {self.count}")
        if index not in self._cache:
            self._cache[index] = self.stream[index]
        return self._cache[index]
