"""The ADIW builder: photos + SA-1B JSON → complete objects → composites → labels → shards (paper §3.1).

For every source image::

    image, SA-1B masks ──► D_b = depth(image) ──► complete objects (ring test on D_b)
        ──► k composites (target + occluder from the same image, buckets cycled)
        ──► D_o = depth(composites) ──► pseudo_label(D_o, D_b, M_a, M_vis) ──► files

**Shards and resume.** Sources are sorted by name and cut into shards of
``sources_per_shard``; a shard is a folder written by one worker. After each source
its sample files are written (each atomically, under a temporary name) and then the
shard's ``manifest.jsonl`` is rewritten atomically with the new sample lines *and* a
``source`` line saying the source is done. The manifest is the only commit point: a
build killed at any moment (even SIGKILL) restarts from the sources its manifests do
not list, and since every random choice is seeded by ``(seed, source name, k)`` the
result equals that of an uninterrupted build — no sample missing, none twice. Files
of a source that was not committed are simply written again.

Rewriting the manifest after every source costs O(n²) bytes in the shard's line
count ``n``. We keep it anyway: an appended line can be torn by a kill mid-write,
and telling a torn or uncommitted tail apart on every read costs more code than the
rewrite costs time. Shards stay small by design (8 sources of ~4 samples by
default, 256 one-sample sources for the pix2gestalt import: a few hundred kB
rewritten per shard, against a depth forward pass per image); a much larger
``sources_per_shard`` would make this the bottleneck.

**Bad sources** — missing or unreadable image, missing or corrupt JSON, corrupt RLE,
masks of another size than the image — are skipped with the reason recorded in the
manifest and counted in ``report.json``; nothing half-written is left behind.

``build.json`` records the settings and the source list; resuming with other
settings is refused rather than mixing two datasets.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from amodal.adiw.sample import AdiwSample, pseudo_label, read_manifest, write_manifest, write_sample
from amodal.composite import BUCKET_RANGES, paste_occluder
from amodal.metrics import visible_ratio_bucket
from amodal.objects import ObjectFilter, select_complete_objects

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MANIFEST = "manifest.jsonl"
SKIP_REASONS = (
    "missing_image",
    "unreadable_image",
    "missing_annotations",
    "corrupt_annotations",
    "corrupt_rle",
    "size_mismatch",
    "error",
)


@dataclass(frozen=True)
class Source:
    """One source image and its SA-1B annotation file (either may be missing on disk)."""

    name: str
    image: str
    annotations: str


@dataclass
class BuildConfig:
    """Settings of a build.

    Attributes:
        samples_per_image: composites tried per source image.
        size: longer side of the stored images (``None``: keep the source size).
        fit: ``"visible"`` (paper) or ``"ring"``, see :func:`amodal.adiw.sample.pseudo_label`.
        seed: seeds every random choice, together with the source name.
        sources_per_shard: sources per output shard (one worker per shard).
        buckets: visible-ratio buckets to cycle through (balanced classes).
        ring_test: use ``D_b`` in the complete-object filter.
        cross_image_occluders: occluders may also come from the source's *partner*, the
            next source in name order (cyclic), whose objects pass the same filter without
            the ring test (its depth is not computed); this lets a photo with a single
            complete object still yield samples.
        object_filter: thresholds of :class:`amodal.objects.ObjectFilter`.
    """

    samples_per_image: int = 4
    size: int | None = None
    fit: str = "visible"
    seed: int = 0
    sources_per_shard: int = 8
    buckets: tuple[str, ...] = ("easy", "mid", "hard")
    ring_test: bool = True
    cross_image_occluders: bool = True
    object_filter: ObjectFilter = field(default_factory=ObjectFilter)


class SourceError(Exception):
    """A source that cannot be used; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def stable_hash(text: str) -> int:
    """A 32-bit hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16)


def find_sources(images: str | os.PathLike, annotations: str | os.PathLike | None = None) -> list[Source]:
    """Pair images with SA-1B JSON files by file stem (``sa_1.jpg`` ↔ ``sa_1.json``).

    Args:
        images: folder of ``.jpg``/``.jpeg``/``.png`` images.
        annotations: folder of ``<stem>.json`` files (default: the images folder, as in SA-1B tars).

    Returns:
        Sources sorted by name; an image without JSON, or a JSON without image, is kept
        (the builder reports it as a bad source).

    Raises:
        FileNotFoundError: a folder that does not exist.
    """
    images = Path(images)
    annotations = Path(annotations) if annotations is not None else images
    for folder in (images, annotations):
        if not folder.is_dir():
            raise FileNotFoundError(f"source folder not found: {folder}")
    found = {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    jsons = {p.stem: p for p in sorted(annotations.glob("*.json"))}
    names = sorted(set(found) | set(jsons))
    return [
        Source(n, str(found.get(n, images / f"{n}.jpg")), str(jsons.get(n, annotations / f"{n}.json")))
        for n in names
    ]


def _resize(image, masks, size):
    from skimage.transform import resize

    h, w = image.shape[:2]
    scale = size / max(h, w)
    if scale == 1:
        return image, masks
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    image = np.clip(np.rint(resize(image, shape, order=1, anti_aliasing=scale < 1, preserve_range=True)), 0, 255).astype(np.uint8)
    masks = [(a, resize(m.astype(np.float32), shape, order=0, anti_aliasing=False) > 0.5) for a, m in masks]
    return image, masks


def load_source(source: Source, size: int | None = None) -> tuple[np.ndarray, list[tuple[dict, np.ndarray]]]:
    """Read a source's image (RGB uint8) and decoded masks, resized so the longer side is ``size``.

    Raises:
        SourceError: with the reason (see :data:`SKIP_REASONS`) and the file named.
    """
    from PIL import Image

    from amodal.sa1b import decode_mask, read_sa1b

    if not Path(source.image).is_file():
        raise SourceError("missing_image", f"image not found: {source.image}")
    try:
        with Image.open(source.image) as handle:
            image = np.asarray(handle.convert("RGB"))
    except Exception as error:  # PIL raises many types on broken files
        raise SourceError("unreadable_image", f"{source.image}: {error}") from None
    if not Path(source.annotations).is_file():
        raise SourceError("missing_annotations", f"annotation file not found: {source.annotations}")
    try:
        data = read_sa1b(source.annotations)
    except ValueError as error:
        reason = "corrupt_rle" if "RLE" in str(error) else "corrupt_annotations"
        raise SourceError(reason, str(error)) from None
    info = data["image"]
    if (info["height"], info["width"]) != image.shape[:2]:
        raise SourceError(
            "size_mismatch",
            f"{source.annotations} says {info['height']}x{info['width']}, image {source.image} is {image.shape[0]}x{image.shape[1]}",
        )
    masks = []
    for annotation in data["annotations"]:
        try:
            masks.append((annotation, decode_mask(annotation, source.annotations)))
        except ValueError as error:
            raise SourceError("corrupt_rle", str(error)) from None
    if size is not None:
        image, masks = _resize(image, masks, size)
    return image, masks


def process_source(source: Source, config: BuildConfig, estimator, partner: Source | None = None) -> tuple[list[AdiwSample], dict, float]:
    """Build the samples of one source.

    Args:
        source: the image the targets come from.
        config: settings.
        estimator: a :class:`amodal.depth.DepthEstimator`.
        partner: another source whose complete objects may serve as occluders
            (ignored when ``config.cross_image_occluders`` is off or it cannot be read).

    Returns:
        ``(samples, record, depth_seconds)``: ``record`` is the manifest's ``source`` line
        (status, counts of rejected objects and skipped composites by reason).

    Raises:
        SourceError: a bad source.
    """
    image, masks = load_source(source, config.size)
    depth_seconds = 0.0
    start = time.perf_counter()
    background_depth = estimator.predict([image])[0]
    depth_seconds += time.perf_counter() - start
    # The ring test needs depth that knows about objects; a toy prior would reject at random.
    use_depth = config.ring_test and getattr(estimator, "informative", True)
    kept, rejected = select_complete_objects(masks, background_depth if use_depth else None, config.object_filter)
    pool = [(source.name, image, obj) for obj in kept]
    if config.cross_image_occluders and partner is not None and partner.name != source.name and kept:
        try:
            partner_image, partner_masks = load_source(partner, config.size)
            pool += [(partner.name, partner_image, obj) for obj in select_complete_objects(partner_masks, None, config.object_filter)[0]]
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
        observed = estimator.predict([c[3].image for c in composites])
        depth_seconds += time.perf_counter() - start
        for (k, target, occluder, comp, occluder_source), d_o in zip(composites, observed):
            try:
                label, scale, shift = pseudo_label(
                    d_o, background_depth, comp.amodal_mask, comp.visible_mask, config.fit, comp.occluder_mask
                )
            except ValueError:
                skipped["label_fit_failed"] += 1
                continue
            samples.append(
                AdiwSample(
                    sample_id=f"{source.name}-{k:02d}",
                    image=comp.image,
                    observed_depth=d_o,
                    amodal_mask=comp.amodal_mask,
                    visible_mask=comp.visible_mask,
                    target_depth=label,
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
                        "scale": scale,
                        "shift": shift,
                        "seed": config.seed,
                    },
                )
            )
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


def _resolve_estimator(depth):
    """A spec string, an estimator, or a picklable factory (e.g. ``functools.partial``) → an estimator."""
    if isinstance(depth, str):
        from amodal.depth import load_estimator

        return load_estimator(depth)
    if hasattr(depth, "predict"):
        return depth
    return depth()


def depth_name(depth) -> str:
    """What ``build.json`` records of the depth model (a resume with another one is refused)."""
    if isinstance(depth, str):
        return depth
    if hasattr(depth, "name"):
        return str(depth.name)
    args = getattr(depth, "args", ())
    return str(args[0]) if args else repr(depth)


def build_shard(
    shard_dir: str | os.PathLike,
    sources: Sequence[Source],
    config: BuildConfig,
    depth,
    on_source=None,
    partners: dict | None = None,
    processor=None,
) -> dict:
    """Build (or finish) one shard: the sources its manifest does not list yet.

    Args:
        shard_dir: the shard's folder.
        sources: its sources.
        config: settings.
        depth: a :class:`amodal.depth.DepthEstimator` or a spec for :func:`amodal.depth.load_estimator`.
        on_source: called with no argument after each source (progress bars).
        partners: source name → partner :class:`Source` (see :func:`partners_of`).
        processor: ``f(source, config, estimator, partner) -> (samples, record, depth_seconds)``;
            default :func:`process_source` (the pix2gestalt importer passes its own).

    Returns:
        ``{"sources": processed now, "samples": written now, "depth_seconds": float}``.
    """
    shard_dir = Path(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    for leftover in shard_dir.glob(".*.tmp"):  # from a killed run; never referenced by the manifest
        leftover.unlink()
    manifest = shard_dir / MANIFEST
    records = read_manifest(manifest)
    done = {r["name"] for r in records if r["type"] == "source"}
    estimator = None
    stats = {"sources": 0, "samples": 0, "depth_seconds": 0.0}
    for source in sources:
        if source.name in done:
            if on_source:
                on_source()
            continue
        estimator = estimator or _resolve_estimator(depth)
        try:
            samples, record, seconds = (processor or process_source)(source, config, estimator, (partners or {}).get(source.name))
            stats["depth_seconds"] += seconds
        except SourceError as error:
            samples, record = [], {"type": "source", "name": source.name, "status": "skipped", "reason": error.reason, "detail": error.detail, "samples": 0}
        except Exception as error:  # a bug or an input nobody foresaw: skip it, but say so loudly
            samples = []
            record = {"type": "source", "name": source.name, "status": "skipped", "reason": "error", "detail": f"{type(error).__name__}: {error}", "samples": 0}
        new = [write_sample(shard_dir, s) for s in samples]
        records.extend(new + [record])
        write_manifest(manifest, records)  # the commit point of this source
        stats["sources"] += 1
        stats["samples"] += len(new)
        if on_source:
            on_source()
    return stats


def _shard_job(args):
    shard_dir, sources, config, depth, partners, processor = args
    return build_shard(shard_dir, sources, config, depth, partners=partners, processor=processor)


def partners_of(sources: Sequence[Source]) -> dict[str, Source]:
    """Each source's partner: the next one in name order, the last one's is the first."""
    ordered = sorted(sources, key=lambda s: s.name)
    return {s.name: ordered[(i + 1) % len(ordered)] for i, s in enumerate(ordered)}


def shards_of(sources: Sequence[Source], per_shard: int) -> list[list[Source]]:
    """Sources sorted by name, cut into consecutive shards of ``per_shard``."""
    ordered = sorted(sources, key=lambda s: s.name)
    return [ordered[i : i + per_shard] for i in range(0, len(ordered), per_shard)]


def build(
    sources: Sequence[Source],
    output: str | os.PathLike,
    depth="row-prior",
    config: BuildConfig | None = None,
    workers: int = 1,
    progress: bool = True,
    processor=None,
) -> dict:
    """Build ADIW from ``sources`` into ``output`` (resuming whatever is there).

    Args:
        sources: from :func:`find_sources`.
        output: the dataset folder (``build.json``, ``report.json``, ``shard-NNNNN/``).
        depth: a :class:`amodal.depth.DepthEstimator` or a spec string (``"row-prior"``,
            a DAV2 checkpoint path); with ``workers > 1`` each worker makes its own.
        config: settings (default :class:`BuildConfig`).
        workers: processes, one shard at a time each.
        progress: show a tqdm bar over sources.
        processor: how one source becomes samples (default :func:`process_source`).

    Returns:
        The build report (also written to ``output/report.json``).

    Raises:
        ValueError: ``output`` holds a build with other settings or sources.
    """
    from tqdm.auto import tqdm

    config = config or BuildConfig()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    plan = {
        "config": json.loads(json.dumps(asdict(config))),
        "depth": depth_name(depth),
        "processor": getattr(processor or process_source, "__qualname__", "custom"),
        "sources": [asdict(s) for s in sorted(sources, key=lambda s: s.name)],
    }
    plan_path = output / "build.json"
    if plan_path.is_file():
        previous = json.loads(plan_path.read_text())
        if previous != plan:
            raise ValueError(f"{output} holds a build with other settings or sources; use a new output folder")
    else:
        tmp = plan_path.with_name(".build.json.tmp")
        tmp.write_text(json.dumps(plan, indent=1) + "\n")
        os.replace(tmp, plan_path)
    shards = shards_of(sources, config.sources_per_shard)
    partners = partners_of(sources)
    jobs = [
        (output / f"shard-{i:05d}", shard, config, depth, {s.name: partners[s.name] for s in shard}, processor)
        for i, shard in enumerate(shards)
    ]
    start = time.perf_counter()
    totals = Counter()
    bar = tqdm(total=len(sources), desc="ADIW sources", disable=not progress)
    if workers <= 1:
        for shard_dir, shard, _, _, shard_partners, _ in jobs:
            totals.update(build_shard(shard_dir, shard, config, depth, lambda: bar.update(1), shard_partners, processor))
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for job, stats in zip(jobs, pool.imap(_shard_job, jobs)):
                shard = job[1]
                totals.update(stats)
                bar.update(len(shard))
    bar.close()
    seconds = time.perf_counter() - start
    report = summarise(output)
    report["this_run"] = {
        "sources_processed": int(totals["sources"]),
        "samples_written": int(totals["samples"]),
        "seconds": seconds,
        "depth_seconds": float(totals["depth_seconds"]),
        "workers": workers,
    }
    tmp = output / ".report.json.tmp"
    tmp.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, output / "report.json")
    return report


def manifest_records(output: str | os.PathLike) -> list[tuple[Path, dict]]:
    """All manifest lines of a built dataset, shard by shard: ``[(shard folder, record), ...]``."""
    out = []
    for shard in sorted(Path(output).glob("shard-*")):
        out.extend((shard, r) for r in read_manifest(shard / MANIFEST))
    return out


def summarise(output: str | os.PathLike) -> dict:
    """Counts over a built dataset: sources by status and reason, samples by bucket,
    rejected objects and skipped composites by reason."""
    sources, skipped, buckets, rejected, skipped_samples = Counter(), Counter(), Counter(), Counter(), Counter()
    for _, record in manifest_records(output):
        if record["type"] == "sample":
            buckets[record["bucket"]] += 1
        else:
            sources[record["status"]] += 1
            if record["status"] == "skipped":
                skipped[record["reason"]] += 1
            rejected.update(record.get("rejected_objects", {}))
            skipped_samples.update(record.get("skipped_samples", {}))
    return {
        "sources": dict(sources),
        "skipped_sources": dict(skipped),
        "samples": int(sum(buckets.values())),
        "buckets": dict(buckets),
        "rejected_objects": dict(rejected),
        "skipped_samples": dict(skipped_samples),
    }
