"""Opening data by name: the one way evaluation, training and the explorer read it.

``--data`` takes one of four kinds of source, and every command means the same by each:

- ``synth``: held-out synthetic scenes (:class:`amodal.data.streams.SynthStream`), where the
  hidden depth is exact; item ``k`` of seed ``s`` is the same everywhere;
- ``middlebury``: real disparity behind pasted occluders (:mod:`amodal.data.middlebury`);
- a folder of our ADIW shards (``shard-*/manifest.jsonl``, written by ``python -m amodal build``);
- a folder in the official layout (pix2gestalt's release with the official labels, ``whole_mask/``).

:func:`evaluation_items` gives a list of items (dicts: ``image`` (3, S, S) in [0, 1];
``amodal_mask``, ``visible_mask``, ``observed_depth``, ``target_depth`` (1, S, S); ``bucket``
and ``id``; optionally ``occluder_mask``), :func:`training_data` a dataset the trainer walks
(for ``synth`` an endless stream or a fixed pool, for ``bend`` notebook 04's toy).
"""
from __future__ import annotations

import os

from amodal.adiw.dataset import open_dataset
from amodal.data.mask_items import MaskCrops
from amodal.data.middlebury import middlebury_items
from amodal.data.streams import BendStream, SynthPool, SynthStream
from amodal.models.mask_completer import completer_config

HELD_OUT_SEED = 2026  # the evaluation's synthetic scenes; training streams and validation use others
SOURCES = ("synth", "middlebury")  # the named sources; anything else is a folder


def evaluation_items(data: str | os.PathLike, count: int | None = None, size: int | None = 518, *,
                     seed: int = HELD_OUT_SEED, shapes: str = "simple", split: str | os.PathLike | None = None,
                     mode: str = "paper", photos: str | os.PathLike | None = None,
                     with_occluder: bool = False) -> list[dict]:
    """The items ``data`` names, as a list.

    Args:
        data: ``"synth"``, ``"middlebury"``, a folder of our shards or the official layout.
        count: how many (``synth`` and ``middlebury``: required; a folder: the first
            ``count``, default all).
        size: side of the square items (a folder: ``None`` keeps each sample's size).
        seed: ``synth`` and ``middlebury``: which scenes.
        shapes: ``synth``: the shape families (:data:`amodal.scenes.synth.SHAPE_SETS`).
        split: the official layout: a split list (``data_split/sam/val.txt``).
        mode: a folder: the preprocessing (:mod:`amodal.models.preprocess`).
        photos: our shards: the photos they were built from, to recover ``occluder_mask``.
        with_occluder: ``synth``: items also carry ``occluder_mask``.

    Raises:
        ValueError: no ``count`` for a named source, or a count below 1.
        FileNotFoundError: a folder that does not exist or holds neither layout.
    """
    if count is not None and count < 1:
        raise ValueError(f"count must be ≥ 1, got {count}")
    name = str(data)
    if name in SOURCES and count is None:
        raise ValueError(f"--data {name} needs a count of items")
    if name == "synth":
        stream = SynthStream(seed=seed, size=size, shapes=shapes, with_occluder=with_occluder)
        return [stream[k] for k in range(count)]
    if name == "middlebury":
        return middlebury_items(count, size, seed)
    dataset = open_dataset(data, size, split, mode, photos=photos)
    if len(dataset) == 0:
        raise FileNotFoundError(f"no ADIW samples in {data}")
    return [dataset[k] for k in range(len(dataset) if count is None else min(count, len(dataset)))]


def training_data(data: str | os.PathLike, recipe, split: str | os.PathLike | None = None):
    """What the trainer walks for ``--data``, at the recipe's input size.

    Args:
        data: ``"synth"`` (a :class:`SynthPool` of ``recipe.synth_pool`` scenes, or the endless
            :class:`SynthStream` when that is 0), ``"bend"`` (:class:`BendStream`), a folder of
            our shards or the official layout.
        recipe: a :class:`amodal.training.recipes.Recipe` (its seed, input size, pool and shapes).
        split: the official layout: a split list (``data_split/sam/train.txt``).

    A ``mask-completer`` recipe gets the same sources (scenes rendered at ``recipe.scene_size``,
    the pool's crops kept rather than its scenes; a folder's samples at their own size unless
    it is set) as :class:`MaskCrops`: the crop around each sample's ``M_vis``, the network's
    input, with ``M_a`` as the target.
    """
    if recipe.model == "mask-completer":
        if str(data) == "bend":
            raise ValueError("--data bend holds no objects to complete; the mask completer trains on 'synth' or ADIW data")
        config = completer_config(recipe.size, recipe.input_size)
        if str(data) == "synth":
            scenes = SynthStream(seed=recipe.seed, size=recipe.scene_size or recipe.input_size, shapes=recipe.synth_shapes,
                                 realism=recipe.synth_realism)
            return MaskCrops(scenes, config, count=recipe.synth_pool or None)
        return MaskCrops(open_dataset(data, recipe.scene_size, split), config)
    if str(data) == "synth":
        if recipe.synth_pool:
            return SynthPool(seed=recipe.seed, count=recipe.synth_pool, size=recipe.input_size, shapes=recipe.synth_shapes,
                             realism=recipe.synth_realism)
        return SynthStream(seed=recipe.seed, size=recipe.input_size, shapes=recipe.synth_shapes, realism=recipe.synth_realism)
    if str(data) == "bend":
        return BendStream(seed=recipe.seed, size=recipe.input_size)
    return open_dataset(data, recipe.input_size, split)
