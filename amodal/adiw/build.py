"""The ADIW builder: photos + SA-1B JSON → complete objects → composites → labels → shards (paper §3.1).

For every source image::

    image, SA-1B masks ──► D_b = depth(image) ──► complete objects (ring test on D_b)
        ──► k composites (target + occluder from the same image, buckets cycled)
        ──► D_o = depth(composites) ──► pseudo_label(D_o, D_b, M_a, M_vis) ──► files

**Shards and resume.** Sources are sorted by name and cut into shards of
``sources_per_shard``; a shard is a folder written by one process at a time
(:mod:`amodal.adiw.shards` keeps the books). After each source its sample files are
written (each atomically, and flushed to disk) and then the shard's ``manifest.jsonl``
is rewritten atomically with the new sample lines *and* a ``source`` line saying what
became of the source. The manifest is the only commit point: a build killed at any
moment (even SIGKILL) restarts from the sources its manifests do not list as done,
and since every random choice is seeded by ``(seed, source name, k)`` the result
equals that of an uninterrupted build — no sample missing, none twice. Files of a
source that was not committed are simply written again.

Rewriting the manifest after every source costs O(n²) bytes in the shard's line
count ``n``. We keep it anyway: an appended line can be torn by a kill mid-write,
and telling a torn or uncommitted tail apart on every read costs more code than the
rewrite costs time. Shards stay small by design (8 sources of ~4 samples by
default, 256 one-sample sources for the pix2gestalt import: a few hundred kB
rewritten per shard, against a depth forward pass per image); a much larger
``sources_per_shard`` would make this the bottleneck.

**Bad sources** — missing or unreadable image, missing or corrupt JSON, corrupt RLE,
masks of another size than the image — are skipped with the reason recorded in the
manifest and counted in ``report.json``; a resume keeps them skipped
(``retry_errors=True`` tries them again). **Failures** — any other error, a bug or
trouble that may pass such as a CUDA out-of-memory — are recorded as ``failed`` with
the error, reported, and retried by every resume. Nothing half-written is left behind.

**Cost.** One depth model per process, made when the process first has work; each
photo is decoded once, though it also serves its neighbour as occluder source (a
:class:`SourceCache` keeps the last two). ``workers`` processes share a machine's
shards (``device="cuda"`` spreads them over its GPUs) and ``world_size`` machines the
shards of one dataset folder: see :mod:`amodal.adiw.shards`.

``build.json`` records the settings and the source list; resuming with other
settings is refused rather than mixing two datasets.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from amodal.adiw.composite import BUCKET_RANGES, paste_occluder
from amodal.adiw.objects import ObjectFilter, select_complete_objects
from amodal.adiw.paper_label import DEPTH_SIZE, LABEL_SIZE, paper_label
from amodal.adiw.sample import AdiwSample, pseudo_label, read_manifest
from amodal.adiw.shards import (
    MANIFEST,
    SourceError,
    distributed_rank,
    pending,
    run_shards,
    shards_of,
    summarise,
    worker_devices,
)
from amodal.adiw.sources import Source, SourceCache, partners_of
from amodal.metrics import visible_ratio_bucket
from amodal.utils.atomic import atomic_write_json, remove_leftovers
from amodal.utils.images import DEFAULT_MAX_PIXELS
from amodal.utils.locks import FolderLock, lock_name


@dataclass
class BuildConfig:
    """Settings of a build.

    Attributes:
        samples_per_image: composites tried per source image.
        size: longer side of the stored images (``None``: keep the source size).
        fit: ``"visible"`` (paper) or ``"ring"``, see :func:`amodal.adiw.sample.pseudo_label`.
        label_mode: ``"ours"`` (each image at its own size) or ``"paper"``: the official
            label script's recipe, depth at a 518² squash and samples at 512²
            (:mod:`amodal.adiw.paper_label`; ``fit`` is then always the visible pixels).
        seed: seeds every random choice, together with the source name.
        sources_per_shard: sources per output shard (one worker per shard).
        buckets: visible-ratio buckets to cycle through (balanced classes).
        ring_test: use ``D_b`` in the complete-object filter.
        cross_image_occluders: occluders may also come from the source's *partner*, the
            next source in name order (cyclic), whose objects pass the same filter without
            the ring test (its depth is not computed); this lets a photo with a single
            complete object still yield samples.
        object_filter: thresholds of :class:`amodal.adiw.objects.ObjectFilter`.
    """

    samples_per_image: int = 4
    size: int | None = None
    fit: str = "visible"
    label_mode: str = "ours"
    seed: int = 0
    sources_per_shard: int = 8
    buckets: tuple[str, ...] = ("easy", "mid", "hard")
    ring_test: bool = True
    cross_image_occluders: bool = True
    object_filter: ObjectFilter = field(default_factory=ObjectFilter)

    def __post_init__(self):
        """Refuse settings that would build nothing, before a file is written."""
        for name in ("samples_per_image", "sources_per_shard"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 16):
            raise ValueError(f"size must be a whole number ≥ 16 (pixels of the longer side) or None, got {self.size!r}")
        if self.fit not in ("visible", "ring"):
            raise ValueError(f"fit must be 'visible' or 'ring', got {self.fit!r}")
        if self.label_mode not in ("ours", "paper"):
            raise ValueError(f"label_mode must be 'ours' or 'paper', got {self.label_mode!r}")
        unknown = sorted(set(self.buckets) - set(BUCKET_RANGES))
        if unknown or not self.buckets:
            raise ValueError(f"buckets must be a non-empty subset of {sorted(BUCKET_RANGES)}, got {self.buckets!r}")


def stable_hash(text: str) -> int:
    """A 32-bit hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16)


def process_source(
    source: Source, config: BuildConfig, estimator, partner: Source | None = None, cache: SourceCache | None = None
) -> tuple[list[AdiwSample], dict, float]:
    """Build the samples of one source.

    Args:
        source: the image the targets come from.
        config: settings.
        estimator: a :class:`amodal.adiw.depth.DepthEstimator`.
        partner: another source whose complete objects may serve as occluders
            (ignored when ``config.cross_image_occluders`` is off or it cannot be read).
        cache: decoded sources to reuse (the builder passes one per process).

    Returns:
        ``(samples, record, depth_seconds)``: ``record`` is the manifest's ``source`` line
        (status, counts of rejected objects and skipped composites by reason).

    Raises:
        SourceError: a bad source.
    """
    cache = cache if cache is not None else SourceCache()
    image, masks = cache.load(source, config.size)
    depth_seconds = 0.0
    start = time.perf_counter()
    background_depth = estimator.predict([image])[0]
    depth_seconds += time.perf_counter() - start
    # The ring test needs depth that knows about objects; a toy prior would reject at random.
    if config.ring_test and getattr(estimator, "informative", True):
        kept, rejected = select_complete_objects(masks, background_depth, config.object_filter)
    else:
        kept, rejected = cache.objects(source, config.size, config.object_filter)
    pool = [(source.name, image, obj) for obj in kept]
    if config.cross_image_occluders and partner is not None and partner.name != source.name and kept:
        try:
            partner_image = cache.load(partner, config.size)[0]
            pool += [(partner.name, partner_image, obj) for obj in cache.objects(partner, config.size, config.object_filter)[0]]
        except SourceError:
            pass  # the partner is reported when it is built itself
    skipped: Counter = Counter()
    rng = np.random.default_rng([config.seed, stable_hash(source.name)])
    offset = stable_hash(source.name) % len(config.buckets)
    composites = []
    for k in range(config.samples_per_image):
        if not kept or len(pool) < 2:
            skipped["no_occluder" if kept else "no_complete_object"] += 1
            continue
        bucket = config.buckets[(offset + k) % len(config.buckets)]
        t = int(rng.integers(len(kept)))
        o = int(rng.integers(len(pool) - 1))
        o = o + 1 if o >= t else o  # any pool entry but the target (pool starts with kept)
        target = kept[t]
        occluder_source, occluder_image, occluder = pool[o]
        comp = paste_occluder(image, target.mask, occluder_image, occluder.mask, BUCKET_RANGES[bucket], seed=rng)
        if comp is None:
            skipped["no_placement"] += 1
            continue
        composites.append((k, target, occluder, comp, occluder_source))
    samples = []
    if composites:
        start = time.perf_counter()
        # the paper's mode runs the depth model on squashed copies itself (paper_label)
        observed = estimator.predict([c[3].image for c in composites]) if config.label_mode == "ours" else [None] * len(composites)
        depth_seconds += time.perf_counter() - start
        for (k, target, occluder, comp, occluder_source), d_o in zip(composites, observed):
            start = time.perf_counter()
            try:
                made = _label(config, estimator, image, background_depth, comp, d_o)
            except ValueError:
                skipped["label_fit_failed"] += 1
                continue
            samples.append(
                AdiwSample(
                    sample_id=f"{source.name}-{k:02d}",
                    bucket=visible_ratio_bucket(comp.visible_ratio),
                    visible_ratio=comp.visible_ratio,
                    provenance={
                        "source": source.name,
                        "image_file": Path(source.image).name,
                        "target_id": target.annotation_id,
                        "occluder_id": occluder.annotation_id,
                        "occluder_source": occluder_source,
                        "placement": asdict(comp.placement),
                        "estimator": estimator.name,
                        "fit": config.fit,
                        "seed": config.seed,
                        **made.pop("provenance"),
                    },
                    **made,
                )
            )
            if config.label_mode == "paper":  # two depth passes inside, the bulk of its time
                depth_seconds += time.perf_counter() - start
    record = {
        "type": "source",
        "name": source.name,
        "status": "ok",
        "samples": len(samples),
        "complete_objects": len(kept),
        "rejected_objects": dict(Counter(r.reason for r in rejected)),
        "skipped_samples": dict(skipped),
    }
    return samples, record, depth_seconds


def _label(config: BuildConfig, estimator, image, background_depth, comp, observed_depth) -> dict:
    """The sample's maps and label by ``config.label_mode`` (raises ``ValueError`` when the fit fails)."""
    if config.label_mode == "paper":
        made = paper_label(comp.image, image, comp.amodal_mask, comp.visible_mask, estimator)
        return {"image": made.image, "observed_depth": made.observed_depth, "amodal_mask": made.amodal_mask,
                "visible_mask": made.visible_mask, "target_depth": made.target_depth,
                "provenance": {"label_mode": "paper", "scale": made.scale, "shift": made.shift,
                               "depth_size": DEPTH_SIZE, "label_size": LABEL_SIZE, "out_of_range": made.out_of_range}}
    label, scale, shift = pseudo_label(observed_depth, background_depth, comp.amodal_mask, comp.visible_mask,
                                       config.fit, comp.occluder_mask)
    return {"image": comp.image, "observed_depth": observed_depth, "amodal_mask": comp.amodal_mask,
            "visible_mask": comp.visible_mask, "target_depth": label,
            "provenance": {"label_mode": "ours", "scale": scale, "shift": shift}}


def depth_name(depth) -> str:
    """What ``build.json`` records of the depth model (a resume with another one is refused)."""
    if isinstance(depth, str):
        return depth
    if hasattr(depth, "name"):
        return str(depth.name)
    args = getattr(depth, "args", ())
    return str(args[0]) if args else repr(depth)


def build(
    sources: Sequence[Source],
    output: str | os.PathLike,
    depth="row-prior",
    config: BuildConfig | None = None,
    workers: int = 1,
    progress: bool = True,
    processor=None,
    device: str | None = None,
    retry_errors: bool = False,
    rank: int | None = None,
    world_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict:
    """Build ADIW from ``sources`` into ``output`` (resuming whatever is there).

    Args:
        sources: from :func:`find_sources`.
        output: the dataset folder (``build.json``, ``report.json``, ``shard-NNNNN/``).
        depth: a :class:`amodal.adiw.depth.DepthEstimator`, a spec string (``"row-prior"``, a
            DAV2 checkpoint path), or a picklable factory (``functools.partial``); each
            process makes one model from a spec or factory, when it first has work.
        config: settings (default :class:`BuildConfig`).
        workers: processes on this machine, one shard at a time each.
        progress: show a tqdm bar over sources.
        processor: how one source becomes samples (default :func:`process_source`).
        device: given to a spec or factory as ``device=``; ``"cuda"`` with several GPUs
            puts the workers on different ones (:func:`amodal.adiw.shards.worker_devices`).
        retry_errors: also rebuild sources skipped for bad input (failed ones always are).
        rank, world_size: this machine's part when ``world_size`` machines build into one
            folder (default: from torchrun's or SLURM's environment, else 0 of 1).
        max_pixels: photos with more pixels are skipped as ``unreadable_image`` before
            they are decoded (:func:`amodal.utils.images.read_image`). Not a setting of
            the dataset: a resume may raise it (with ``retry_errors``) to build them.

    Returns:
        The build report (also written to ``output/report.json``): counts over the whole
        folder, whoever built it; ``sources_pending``, the sources not done yet (other
        ranks' included); ``this_run``, this process's share.

    Raises:
        ValueError: ``output`` holds a build with other settings or sources.
        FolderInUseError: another build (of the same rank) is writing ``output``.
    """

    config = config or BuildConfig()
    rank, world_size, local_rank = distributed_rank(rank, world_size)
    output = Path(output)
    with FolderLock(output, lock_name(rank if world_size > 1 else None)):
        return _build_locked(sources, output, depth, config, workers, progress, processor, device, retry_errors, rank,
                             world_size, local_rank, max_pixels)


def _build_locked(sources, output: Path, depth, config: BuildConfig, workers, progress, processor, device, retry_errors,
                  rank, world_size, local_rank, max_pixels) -> dict:
    """:func:`build` once this process holds the folder's (or its rank's) lock."""
    if world_size == 1:
        remove_leftovers(output)  # a killed writer's temporary report or plan; with ranks another may be writing
    plan = {
        "config": json.loads(json.dumps(asdict(config))),
        "depth": depth_name(depth),
        "processor": getattr(processor or process_source, "__qualname__", "custom"),
        "sources": [asdict(s) for s in sorted(sources, key=lambda s: s.name)],
    }
    plan_path = output / "build.json"
    if not plan_path.is_file():
        atomic_write_json(plan_path, plan, indent=1)  # every rank writes the same bytes; renames are atomic
    previous = json.loads(plan_path.read_text())
    previous["config"].setdefault("label_mode", "ours")  # a build made before the setting existed
    if previous != plan:
        raise ValueError(f"{output} holds a build with other settings or sources; use a new output folder")
    partners = partners_of(sources)
    mine = [(i, shard) for i, shard in enumerate(shards_of(sources, config.sources_per_shard)) if i % world_size == rank]
    jobs = []
    for i, shard in mine:
        shard_dir = output / f"shard-{i:05d}"
        if pending(read_manifest(shard_dir / MANIFEST), [s.name for s in shard], retry_errors):
            jobs.append((shard_dir, shard, config, {s.name: partners[s.name] for s in shard}, retry_errors))
    workers = max(1, min(workers, len(jobs)))
    processor = processor or functools.partial(process_source, cache=SourceCache(max_pixels=max_pixels))
    start = time.perf_counter()
    bar = tqdm(total=sum(len(shard) for _, shard in mine), desc="ADIW sources", disable=not progress)
    bar.update(bar.total - sum(len(job[1]) for job in jobs))
    totals = run_shards(jobs, depth, processor, workers, worker_devices(device, workers, local_rank), bar.update)
    bar.close()
    report = summarise(output)
    report["sources_pending"] = len(sources) - report["sources"].get("ok", 0) - report["sources"].get("skipped", 0)
    report["this_run"] = {
        "sources_processed": int(totals["sources"]),
        "samples_written": int(totals["samples"]),
        "failed": totals["failed"],
        "seconds": time.perf_counter() - start,
        "depth_seconds": float(totals["depth_seconds"]),
        "workers": workers,
        "rank": rank,
        "world_size": world_size,
    }
    atomic_write_json(output / "report.json", report, indent=1, sort_keys=True)
    return report
