"""ADIW builder throughput: samples per second at 256² and 512², 1 and 2 workers.

    python benchmarks/bench_build.py [--photos 32] [--samples-per-image 4]

The depth model is excluded: the builder runs with the row prior (microseconds a
map), and the time spent inside the depth model is measured by the builder and
reported apart. The photos are the ones in ``data_samples/`` (repeated under new
names to reach ``--photos``), resized so the longer side is the given size.
The baseline in the same run is 1 worker.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from amodal.adiw.build import BuildConfig, build, find_sources
from amodal.paths import data_samples_dir
from timing import cpu_name


def make_sources(folder: Path, count: int) -> list:
    photos = sorted((data_samples_dir() / "images").glob("*.jpg"))
    (folder / "images").mkdir(parents=True)
    (folder / "sa1b").mkdir()
    for i in range(count):
        photo = photos[i % len(photos)]
        shutil.copy(photo, folder / "images" / f"{i:03d}_{photo.name}")
        shutil.copy(data_samples_dir() / "sa1b" / f"{photo.stem}.json", folder / "sa1b" / f"{i:03d}_{photo.stem}.json")
    return find_sources(folder / "images", folder / "sa1b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=32)  # fewer: worker start-up dominates
    parser.add_argument("--samples-per-image", type=int, default=4)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = make_sources(Path(tmp) / "src", args.photos)
        for size in (256, 512):
            for workers in (1, 2):
                out = Path(tmp) / f"out_{size}_{workers}"
                config = BuildConfig(samples_per_image=args.samples_per_image, size=size, sources_per_shard=max(1, args.photos // 4))
                report = build(sources, out, "row-prior", config, workers=workers, progress=False)
                run = report["this_run"]
                seconds = run["seconds"] - run["depth_seconds"]
                rows.append((size, workers, report["samples"], run["seconds"], run["depth_seconds"], report["samples"] / seconds))
    print(f"CPU: {cpu_name()}")
    print(f"{args.photos} photos from data_samples, {args.samples_per_image} composites tried per photo; depth model: row prior")
    print(f"{'size':>5} {'workers':>7} {'samples':>7} {'total s':>8} {'depth s':>8} {'samples/s (no depth)':>21}")
    for size, workers, n, total, depth, rate in rows:
        print(f"{size:>5} {workers:>7} {n:>7} {total:>8.2f} {depth:>8.3f} {rate:>21.2f}")
    print("(2-worker runs include starting the worker processes; depth s is summed over workers)")


if __name__ == "__main__":
    main()
