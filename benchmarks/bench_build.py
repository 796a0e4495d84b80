"""ADIW builder throughput: samples per second at 256² and 512², 1 and 2 workers.

    python benchmarks/bench_build.py [--photos 32] [--samples-per-image 4]
    python benchmarks/bench_build.py --depth dav2-s [--photos 8]

The depth model's forward passes are excluded: the builder measures the time spent
inside ``predict`` and it is reported apart. With the row prior (microseconds a map)
this measures the builder alone. With ``--depth dav2-s`` a real Depth Anything V2
ViT-S network (random weights, saved to disk first) is loaded from its file the way a
checkpoint is, so everything the model costs besides its forward passes — reading
the weights, once per process or, as it once did, once per shard — lands in the
"no depth" rate; the row prior at the same settings is the baseline in the same run.
The photos are the ones in ``data_samples/`` (repeated under new names to reach
``--photos``), resized so the longer side is the given size; shards hold a quarter
of the photos.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amodal.adiw.build import build, BuildConfig
from amodal.adiw.sources import find_sources
from amodal.utils.paths import data_samples_dir
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


@dataclass
class TimedLoader:
    """``load_estimator(checkpoint)`` that leaves one file per call, holding the seconds it
    took, in ``folder`` (worker processes included)."""

    checkpoint: str
    folder: str

    def __call__(self, device=None):
        import amodal.models.amodal_dav2  # noqa: F401  (importing torch in a new worker is not reading weights)
        from amodal.adiw.depth import load_estimator

        start = time.perf_counter()
        estimator = load_estimator(self.checkpoint, device=device or "cpu")
        (Path(self.folder) / f"{os.getpid()}-{time.perf_counter_ns()}").write_text(str(time.perf_counter() - start))
        return estimator

    def loads(self) -> tuple[int, float]:
        seconds = [float(p.read_text()) for p in Path(self.folder).iterdir()]
        return len(seconds), sum(seconds)


def save_random_dav2_s(folder: Path) -> str:
    import torch

    from amodal.models.amodal_dav2 import DepthAnythingV2

    torch.manual_seed(0)
    return str(DepthAnythingV2("s").save_pretrained(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=None, help="source photos (default 32; 8 with dav2-s)")
    parser.add_argument("--samples-per-image", type=int, default=None, help="composites tried per photo (default 4; 1 with dav2-s)")
    parser.add_argument("--depth", choices=("row-prior", "dav2-s"), default="row-prior", help="the depth model (see above)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="longer sides (default 256 512; 512 with dav2-s)")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="worker counts (default 1 2; 1 with dav2-s)")
    args = parser.parse_args()
    dav2 = args.depth == "dav2-s"
    photos = args.photos or (8 if dav2 else 32)  # fewer: worker start-up dominates
    sizes = args.sizes or ([512] if dav2 else [256, 512])
    # DAV2-S takes seconds a forward pass on a CPU: keep that mode to a minute or two
    per_image = args.samples_per_image or (1 if dav2 else 4)
    worker_counts = args.workers or ([1] if dav2 else [1, 2])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = make_sources(Path(tmp) / "src", photos)
        models = [("row-prior", lambda: "row-prior")]
        if dav2:
            checkpoint = save_random_dav2_s(Path(tmp) / "dav2-s")
            models.append(("dav2-s", lambda: TimedLoader(checkpoint, tempfile.mkdtemp(dir=tmp))))
        for size in sizes:
            for name, make_depth in models:
                for workers in worker_counts:
                    depth = make_depth()
                    out = Path(tmp) / f"out_{name}_{size}_{workers}"
                    config = BuildConfig(samples_per_image=per_image, size=size, sources_per_shard=max(1, photos // 4))
                    report = build(sources, out, depth, config, workers=workers, progress=False)
                    run = report["this_run"]
                    loads = depth.loads() if isinstance(depth, TimedLoader) else (0, 0.0)
                    rate = report["samples"] / (run["seconds"] - run["depth_seconds"])
                    rows.append((name, size, workers, report["samples"], run["seconds"], run["depth_seconds"], *loads, rate))
    print(f"CPU: {cpu_name()}")
    print(f"{photos} photos from data_samples, {per_image} composites tried per photo, {max(1, photos // 4)} photos a shard")
    print(f"{'depth':>9} {'size':>5} {'workers':>7} {'samples':>7} {'total s':>8} {'depth s':>8} {'loads':>5} {'load s':>6} {'samples/s (no depth)':>21}")
    for name, size, workers, n, total, depth_s, loads, load_s, rate in rows:
        print(f"{name:>9} {size:>5} {workers:>7} {n:>7} {total:>8.2f} {depth_s:>8.3f} {loads:>5} {load_s:>6.2f} {rate:>21.2f}")
    print("(2-worker runs include starting the worker processes; depth s and load s are summed over workers;")
    print(" loads: how often the model was read from disk — once per process)")


if __name__ == "__main__":
    main()
