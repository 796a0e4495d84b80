"""Training data for :func:`amodal.training.loop.train`: endless, seeded streams of synthetic occlusions.

Item ``k`` of :class:`SynthStream` is the synthetic occlusion of seed ``(seed, k)``
(:func:`amodal.adiw.synthetic.synth_occlusion`), its bucket cycled easy → mid → hard, with
the *exact* truth: ``observed_depth`` is the composite's true disparity, min-max normalised
(what a perfect relative-depth model would give as ``D_o``), and ``target_depth`` the
target's full surface in the same frame. The same ``k`` always gives the same item, so the
stream needs no state to resume, and held-out sets are other seeds.

:class:`SynthPool` is the first ``count`` items of a stream, rendered once and kept in
memory: a finite training set (walked in shuffled epochs) for a CPU, where rendering
every step's scenes anew would cost more than the step itself.
:class:`BendStream` is the same idea for the toy of notebook 04
(:mod:`amodal.scenes.toy_occlusion`), whose hidden part bends towards or away from the camera
with equal chance: the data of the tiny Amodal-DepthFM (recipe ``amodal-depthfm-tiny-synth``).
"""
from __future__ import annotations

import numpy as np
import torch

from amodal.adiw.composite import BUCKET_RANGES
from amodal.adiw.synthetic import synth_occlusion
from amodal.metrics import BUCKETS
from amodal.scenes.realism import get_realism
from amodal.scenes.synth import SHAPE_SETS
from amodal.scenes.toy_occlusion import ambiguous_occlusion_batch, scene_seed


class SynthStream:
    """Endless synthetic training items; ``len()`` raises ``TypeError`` (a stream, not a set).

    Args:
        seed: the stream's seed; held-out sets use another one.
        size: image side (a multiple of 14 for Amodal-DAV2).
        buckets: visible-ratio buckets to cycle through.
        with_occluder: items also carry ``occluder_mask`` (1, S, S), the occluder's visible
            pixels (for the explorer; training does not read it).
        shapes: the shape families of the scenes, a key of :data:`amodal.scenes.synth.SHAPE_SETS`
            (``"rich"`` adds corners, edges, tilted curvature and extruded silhouettes).
        realism: what the scenes borrow from photos, a key of :data:`amodal.scenes.realism.REALISM`
            (``"plain"``: the checker-textured scenes of earlier versions, seed for seed).

    Items are dicts: ``image`` (3, S, S) float32 in [0, 1]; ``amodal_mask``, ``visible_mask``,
    ``observed_depth``, ``target_depth`` (1, S, S) float32; ``bucket`` and ``id`` strings.
    """

    def __init__(self, seed: int, size: int = 112, buckets: tuple[str, ...] = BUCKETS, with_occluder: bool = False,
                 shapes: str = "simple", realism: str = "plain"):
        unknown = sorted(set(buckets) - set(BUCKET_RANGES))
        if unknown or not buckets:
            raise ValueError(f"buckets must be a non-empty subset of {sorted(BUCKET_RANGES)}, got {buckets}")
        if shapes not in SHAPE_SETS:
            raise ValueError(f"unknown shape set {shapes!r}; known: {', '.join(SHAPE_SETS)}")
        self.seed, self.size, self.buckets = seed, size, tuple(buckets)
        self.with_occluder, self.shapes = with_occluder, shapes
        self.realism = realism
        self._realism = get_realism(realism)

    def __len__(self):
        raise TypeError("SynthStream is endless")

    def occlusion(self, index: int):
        """The :class:`~amodal.adiw.synthetic.SynthOcclusion` behind item ``index`` (its scene,
        renders and target), for what the item's tensors do not say, such as the target's shape."""

        if index < 0:
            raise IndexError(f"index must be ≥ 0, got {index}")
        bucket = self.buckets[index % len(self.buckets)]
        seed = int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0])
        return synth_occlusion(seed, self.size, BUCKET_RANGES[bucket], shapes=self.shapes, realism=self._realism)

    def __getitem__(self, index: int) -> dict:
        occlusion = self.occlusion(index)
        bucket = self.buckets[index % len(self.buckets)]
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
            "id": "-".join(["synth", *[name for name in (self.shapes, self.realism) if name not in ("simple", "plain")],
                            str(self.seed), str(index)]),
        }
        if self.with_occluder:
            item["occluder_mask"] = map_(occlusion.occluder_mask)
        return item


class SynthPool:
    """The first ``count`` items of ``SynthStream(seed, size, buckets, shapes=shapes, realism=realism)``, rendered on first use.

    A finite dataset (``len`` = ``count``), so the trainer walks it in shuffled epochs.
    Items are rendered lazily and cached: a resumed run renders what it reads again,
    identically. About 35 ms an item at 112² on one core (1,500 items ≈ 1 min), and
    0.3 MB an item in memory.
    """

    def __init__(self, seed: int, count: int, size: int = 112, buckets: tuple[str, ...] = BUCKETS,
                 shapes: str = "simple", realism: str = "plain"):
        if count < 1:
            raise ValueError(f"a synthetic pool needs count ≥ 1, got {count}")
        self.stream = SynthStream(seed, size, buckets, shapes=shapes, realism=realism)
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


class BendStream:
    """Endless scenes of notebook 04's toy, whose hidden part bends either way (``--data bend``).

    Item ``k`` is the one scene :func:`amodal.scenes.toy_occlusion.ambiguous_occlusion_batch`
    draws from the generator seeded :func:`amodal.scenes.toy_occlusion.scene_seed` ``(seed, k)``:
    the same ``k`` always gives the same item (no state to resume), and held-out sets
    take another stream seed (:func:`amodal.scenes.toy_occlusion.held_out_seeds`).

    Args:
        seed: the stream's seed.
        size: image side ``S`` (a multiple of the model's :attr:`size_multiple`).
        slope: how far the hidden part bends (:func:`ambiguous_occlusion_batch`).

    Items are dicts: ``image`` (3, S, S) float32 in [0, 1]; ``amodal_mask``, ``visible_mask``,
    ``observed_depth``, ``target_depth`` (1, S, S) float32; ``bend`` (±1, a float) and ``id``.
    """

    def __init__(self, seed: int, size: int = 32, slope: float = 0.3):
        self.seed, self.size, self.slope = seed, size, slope

    def __len__(self):
        raise TypeError("BendStream is endless")

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            raise IndexError(f"index must be ≥ 0, got {index}")
        generator = torch.Generator().manual_seed(scene_seed(self.seed, index))
        scene = ambiguous_occlusion_batch(1, self.size, generator, self.slope)
        item = {k: v[0] for k, v in scene.items() if k != "bend"}
        return {**item, "bend": float(scene["bend"][0]), "id": f"bend-{self.seed}-{index}"}
