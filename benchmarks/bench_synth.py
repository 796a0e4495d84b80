"""Synthetic scene rendering: culled renderer vs intersecting every object with every ray.

    python benchmarks/bench_synth.py [--size 256] [--scenes 10] [--repeats 3] [--shapes simple|rich]

One core (torch and numpy threads are irrelevant here: the renderer is plain numpy, and
``OMP_NUM_THREADS=1`` is set before numpy loads). Prints best-of-N milliseconds per scene
for both, and checks that they render the same depth.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402

import numpy as np  # noqa: E402

from amodal.scenes import synth  # noqa: E402
from timing import best_seconds, cpu_name  # noqa: E402


def brute_force_depth(scene: synth.Scene) -> np.ndarray:
    """The baseline: every shape against all rays, no screen-space culling (depth only)."""
    rays = scene.camera.rays()
    return np.min(np.stack([s.hit(rays)[0] for s in [*scene.stage(), *scene.objects]]), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", choices=sorted(synth.SHAPE_SETS), default="simple",
                        help="the shape set (rich: polyhedra and ellipsoids too)")
    args = parser.parse_args()
    silhouettes = [np.pad(np.ones((20, 12), bool), 2)]
    scenes = [synth.random_scene(s, args.size, n_objects=(3, 5), silhouettes=silhouettes, shapes=args.shapes)
              for s in range(args.scenes)]
    for scene in scenes:
        assert np.array_equal(synth.render(scene).depth.ravel(), brute_force_depth(scene))
    culled = [1000 * best_seconds(lambda: synth.render(s), args.repeats) for s in scenes]
    brute = [1000 * best_seconds(lambda: brute_force_depth(s), args.repeats) for s in scenes]
    print(f"CPU: {cpu_name()}, 1 thread")
    kinds = ", ".join(synth.SHAPE_SETS[args.shapes]) + ("" if args.shapes == "rich" else ", silhouette")
    print(f"{args.scenes} scenes of {args.size}x{args.size}, 3-5 objects each ({kinds})")
    print(f"{'renderer':<34} {'median ms':>10} {'max ms':>8}")
    print(f"{'render (culled, RGB+masks+depth)':<34} {np.median(culled):>10.1f} {np.max(culled):>8.1f}")
    print(f"{'baseline: all rays, depth only':<34} {np.median(brute):>10.1f} {np.max(brute):>8.1f}")


if __name__ == "__main__":
    main()
