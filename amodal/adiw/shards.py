"""The builder's bookkeeping: shards, their manifests, what is left to do, and who does it.

A built dataset is a folder of shards ``shard-NNNNN/``, each with the sample files of
its sources and a ``manifest.jsonl``: one ``sample`` line per sample and one
``source`` line per source, whose ``status`` says what became of it:

==========  ==============================================================  ==========
status      meaning                                                         on resume
==========  ==============================================================  ==========
``ok``      built (perhaps into zero samples, with the reasons counted)     kept
``skipped`` bad input, ``reason`` one of :data:`SKIP_REASONS`, ``detail``   kept
``failed``  an unexpected error (a bug, a CUDA out-of-memory, a network     retried
            file system hiccup), ``detail`` names it
==========  ==============================================================  ==========

Bad input stays bad, so it is not tried again — unless asked (``retry_errors``, for
instance after the files were repaired). A failure may be passing, so it is retried
by every resume. Either way a retried source's old line is replaced, and since every
random choice is seeded by the source, the result equals an uninterrupted build.

**Who does what.** A shard is written by one process at a time. ``workers`` processes
of one machine share a machine's shards; ``world_size`` machines (ranks) share the
shards of one dataset folder, rank ``r`` taking shards ``r, r + N, r + 2N, ...``, so
no two ever write the same shard. The rank is read from torchrun's (``RANK``,
``WORLD_SIZE``) or SLURM's (``SLURM_PROCID``, ``SLURM_NTASKS``) environment when not
given. With ``device="cuda"`` the workers of a machine are spread over its GPUs.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import torch

from amodal.adiw.depth import load_estimator
from amodal.adiw.sample import read_manifest, write_manifest, write_sample
from amodal.utils.atomic import remove_leftovers

MANIFEST = "manifest.jsonl"
SKIP_REASONS = (
    "missing_image",
    "unreadable_image",
    "missing_annotations",
    "corrupt_annotations",
    "corrupt_rle",
    "size_mismatch",
)
# (rank, world size, rank on this machine) variables of the launchers we know, first match wins.
LAUNCHER_VARIABLES = (("RANK", "WORLD_SIZE", "LOCAL_RANK"), ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"))


class SourceError(Exception):
    """A source that cannot be used; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def is_done(record: dict, retry_errors: bool = False) -> bool:
    """Whether a manifest ``source`` line means "do not build this source again".

    ``failed`` lines never do (nor ``skipped`` with reason ``error``, which older builds
    wrote for failures); with ``retry_errors`` only ``ok`` lines do.
    """
    if record["status"] == "ok":
        return True
    return record["status"] == "skipped" and record.get("reason") != "error" and not retry_errors


def pending(records: Sequence[dict], names: Sequence[str], retry_errors: bool = False) -> list[str]:
    """The sources among ``names`` that a shard's manifest ``records`` do not list as done."""
    done = {r["name"] for r in records if r["type"] == "source" and is_done(r, retry_errors)}
    return [n for n in names if n not in done]


def make_estimator(depth, device: str | None = None):
    """A depth estimator from ``depth``: an estimator (returned as is), a spec string for
    :func:`amodal.adiw.depth.load_estimator`, or a picklable factory (``functools.partial``).
    A spec or factory is given ``device=device`` unless ``device`` is ``None``."""
    if hasattr(depth, "predict"):
        return depth
    options = {} if device is None else {"device": device}
    if isinstance(depth, str):
        return load_estimator(depth, **options)
    return depth(**options)


def build_shard(
    shard_dir: str | os.PathLike,
    sources: Sequence,
    config,
    estimator,
    processor,
    on_source=None,
    partners: Mapping | None = None,
    retry_errors: bool = False,
) -> dict:
    """Build (or finish) one shard: the sources its manifest does not list as done.

    Args:
        shard_dir: the shard's folder (owned by this process while it runs).
        sources: its :class:`amodal.adiw.build.Source` list.
        config: a :class:`amodal.adiw.build.BuildConfig`.
        estimator: a :class:`amodal.adiw.depth.DepthEstimator`, or anything
            :func:`make_estimator` takes (then made once, if there is work).
        processor: ``f(source, config, estimator, partner) -> (samples, record, depth_seconds)``
            (:func:`amodal.adiw.build.process_source`, or the pix2gestalt importer's).
        on_source: called with no argument after each source (progress bars).
        partners: source name → partner source.
        retry_errors: also rebuild sources skipped for bad input.

    Returns:
        ``{"sources": processed now, "samples": written now, "depth_seconds": float,
        "failed": [{"source": name, "detail": text}, ...]}``.
    """
    shard_dir = Path(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(shard_dir)  # temporary files of a killed run; no manifest names them
    manifest = shard_dir / MANIFEST
    records = read_manifest(manifest)
    todo = set(pending(records, [s.name for s in sources], retry_errors))
    stats = {"sources": 0, "samples": 0, "depth_seconds": 0.0, "failed": []}
    for source in sources:
        if source.name in todo:
            estimator = make_estimator(estimator)  # made on the first source to build, then kept
            samples, record = [], {"type": "source", "name": source.name, "samples": 0}
            try:
                samples, record, seconds = processor(source, config, estimator, (partners or {}).get(source.name))
                stats["depth_seconds"] += seconds
            except SourceError as error:
                record.update(status="skipped", reason=error.reason, detail=error.detail)
            except Exception as error:  # a bug, or trouble that may pass: said loudly, retried on resume
                record.update(status="failed", detail=f"{type(error).__name__}: {error}")
                stats["failed"].append({"source": source.name, "detail": record["detail"]})
                warnings.warn(f"ADIW source {source.name} failed ({record['detail']}); a resume will retry it", RuntimeWarning)
            new = [write_sample(shard_dir, s) for s in samples]  # each flushed to disk before the commit
            # A retried source's old line goes; its samples are new (a source that was not
            # "ok" has none).
            records = [r for r in records if not (r["type"] == "source" and r["name"] == source.name)]
            records.extend(new + [record])
            write_manifest(manifest, records)  # the commit point of this source
            stats["sources"] += 1
            stats["samples"] += len(new)
        if on_source:
            on_source()
    return stats


# What a worker process was started with, and the depth model it made for its first shard.
_WORKER: dict = {}


def _start_worker(depth, devices: list, counter, processor) -> None:
    with counter.get_lock():  # workers number themselves 0, 1, ... to pick their device
        index = counter.value
        counter.value += 1
    _WORKER.update(depth=depth, device=devices[index % len(devices)], processor=processor)


def _shard_job(job) -> dict:
    shard_dir, sources, config, partners, retry_errors = job
    if "estimator" not in _WORKER:  # not in _start_worker: a pool restarts a worker whose start fails, forever
        _WORKER["estimator"] = make_estimator(_WORKER["depth"], _WORKER["device"])
    return build_shard(shard_dir, sources, config, _WORKER["estimator"], _WORKER["processor"], partners=partners, retry_errors=retry_errors)


def run_shards(jobs: Sequence[tuple], depth, processor, workers: int = 1, devices: Sequence = (None,), on_sources=None) -> dict:
    """Build shards, with one depth model per process.

    Args:
        jobs: ``(shard_dir, sources, config, partners, retry_errors)`` per shard, as
            :func:`build_shard` takes them.
        depth: what :func:`make_estimator` takes.
        processor: see :func:`build_shard`; with ``workers > 1`` each worker gets a copy.
        workers: 1 builds here; more start that many processes (spawned), each taking
            one shard at a time.
        devices: one per worker (:func:`worker_devices`).
        on_sources: called with a count of sources done (progress bars).

    Returns:
        :func:`build_shard`'s counts, summed over the shards.
    """
    totals: dict = {"sources": 0, "samples": 0, "depth_seconds": 0.0, "failed": []}

    def add(stats):
        for key, value in stats.items():
            totals[key] += value

    if workers == 1 and jobs:
        estimator = make_estimator(depth, devices[0])
        for shard_dir, sources, config, partners, retry_errors in jobs:
            add(build_shard(shard_dir, sources, config, estimator, processor, lambda: on_sources and on_sources(1), partners, retry_errors))
    elif jobs:
        context = mp.get_context("spawn")
        initargs = (depth, list(devices), context.Value("i", 0), processor)
        with context.Pool(workers, initializer=_start_worker, initargs=initargs) as pool:
            for job, stats in zip(jobs, pool.imap(_shard_job, jobs)):
                add(stats)
                if on_sources:
                    on_sources(len(job[1]))
    return totals


def shards_of(sources: Sequence, per_shard: int) -> list[list]:
    """Sources sorted by name, cut into consecutive shards of ``per_shard``."""
    ordered = sorted(sources, key=lambda s: s.name)
    return [ordered[i : i + per_shard] for i in range(0, len(ordered), per_shard)]


def distributed_rank(rank: int | None = None, world_size: int | None = None, environ: Mapping[str, str] | None = None) -> tuple[int, int, int]:
    """This process's ``(rank, world_size, local_rank)`` among the machines building one dataset.

    Args:
        rank, world_size: given explicitly (both or neither); otherwise read from the
            launcher's environment (:data:`LAUNCHER_VARIABLES`: torchrun, then SLURM),
            and ``(0, 1)`` when there is none.
        environ: the environment (default ``os.environ``).

    Returns:
        ``local_rank`` is the rank among the processes of this machine (``LOCAL_RANK``,
        ``SLURM_LOCALID``; 0 when unknown): it picks this process's GPUs.

    Raises:
        ValueError: only one of ``rank``/``world_size`` given, or ``not 0 <= rank < world_size``.
    """
    environ = os.environ if environ is None else environ
    local_rank = 0
    if (rank is None) != (world_size is None):
        raise ValueError(f"give both rank and world size, or neither (got rank={rank}, world size={world_size})")
    if rank is None:
        rank, world_size = 0, 1
        for rank_key, size_key, local_key in LAUNCHER_VARIABLES:
            if rank_key in environ and size_key in environ:
                rank, world_size = int(environ[rank_key]), int(environ[size_key])
                local_rank = int(environ.get(local_key, 0))
                break
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world size): rank {rank}, world size {world_size}")
    return rank, world_size, local_rank


def worker_devices(device: str | None, workers: int, local_rank: int = 0) -> list[str | None]:
    """The device of each worker: ``"cuda"`` with several GPUs visible is spread over them.

    Worker ``i`` of the process with local rank ``l`` gets ``cuda:((l·workers + i) mod n)``
    for ``n = torch.cuda.device_count()``, so the workers of all ranks on a machine fill
    its GPUs in turn. Any other device (``"cpu"``, ``"cuda:1"``, ``None``) is kept as given.
    """
    if device != "cuda":
        return [device] * workers

    count = torch.cuda.device_count()
    if count <= 1:
        return [device] * workers
    return [f"cuda:{(local_rank * workers + i) % count}" for i in range(workers)]


def manifest_records(output: str | os.PathLike) -> list[tuple[Path, dict]]:
    """All manifest lines of a built dataset, shard by shard: ``[(shard folder, record), ...]``."""
    out = []
    for shard in sorted(Path(output).glob("shard-*")):
        out.extend((shard, r) for r in read_manifest(shard / MANIFEST))
    return out


def summarise(output: str | os.PathLike) -> dict:
    """Counts over a built dataset (all shards, whoever wrote them): sources by status,
    skipped sources by reason, failed sources with their error, samples by bucket,
    rejected objects and skipped composites by reason."""
    sources, skipped, buckets, rejected, skipped_samples = Counter(), Counter(), Counter(), Counter(), Counter()
    failed = {}
    for _, record in manifest_records(output):
        if record["type"] == "sample":
            buckets[record["bucket"]] += 1
            continue
        sources[record["status"]] += 1
        if record["status"] == "skipped":
            skipped[record["reason"]] += 1
        elif record["status"] == "failed":
            failed[record["name"]] = record["detail"]
        rejected.update(record.get("rejected_objects", {}))
        skipped_samples.update(record.get("skipped_samples", {}))
    return {
        "sources": dict(sources),
        "skipped_sources": dict(skipped),
        "failed_sources": failed,
        "samples": int(sum(buckets.values())),
        "buckets": dict(buckets),
        "rejected_objects": dict(rejected),
        "skipped_samples": dict(skipped_samples),
    }
