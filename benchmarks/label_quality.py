"""How good are ADIW's pseudo-labels? The full table on synthetic scenes with exact hidden depth.

    python benchmarks/label_quality.py [--n 200] [--size 128] [--seed 0]

Prints the table of :func:`amodal.adiw.quality.label_quality`: RMSE ×100, δ1 % and AbsRel
on the hidden region, per depth model (exact; affine + noise; gamma + noise) and fit region
(visible pixels as in the paper; background ring), with the depth model's own error on the
visible pixels as the floor. Notebook 01 shows the same table on fewer samples.
"""
from __future__ import annotations

import argparse
import time

from amodal.adiw.quality import label_quality, quality_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    result = label_quality(n=args.n, size=args.size, seed=args.seed)
    print(f"n = {args.n} synthetic occlusions, {args.size}x{args.size}, seed {args.seed} ({time.perf_counter() - start:.0f} s)")
    print(quality_table(result))


if __name__ == "__main__":
    main()
