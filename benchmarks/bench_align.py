"""Batched torch alignment vs a per-image numpy.linalg.lstsq loop, measured in one run.

    python benchmarks/bench_align.py [--batch 32] [--size 518] [--repeats 5]

Prints a table with the best-of-N wall time of each, the speed-up, and the largest
relative difference between the two answers.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from amodal.align import _centred_moments, _flat_batches, _solve, scale_shift
from timing import best_seconds, cpu_name


def lstsq_loop(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.empty((pred.shape[0], 2))
    for b in range(pred.shape[0]):
        m = mask[b, 0]
        p = pred[b, 0][m].astype(np.float64)
        design = np.stack([p, np.ones_like(p)], axis=1)
        out[b], *_ = np.linalg.lstsq(design, target[b, 0][m].astype(np.float64), rcond=None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=518)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.batch, 1, args.size, args.size)
    pred = rng.random(shape, dtype=np.float32)
    target = (0.8 * pred + 0.1 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    mask = rng.random(shape) < 0.4
    pred_t, target_t, mask_t = map(torch.from_numpy, (pred, target, mask))

    t_loop = best_seconds(lambda: lstsq_loop(pred, target, mask), args.repeats)
    t_batched = best_seconds(lambda: scale_shift(pred_t, target_t, mask_t), args.repeats)
    t_numpy = best_seconds(lambda: scale_shift(pred, target, mask), args.repeats)
    t_general = best_seconds(lambda: _solve(*_centred_moments(*_flat_batches(pred_t, target_t, mask_t))), args.repeats)

    ref = lstsq_loop(pred, target, mask)
    scale, shift = scale_shift(pred_t, target_t, mask_t)
    got = torch.stack([scale, shift], 1).numpy()
    rel = float(np.max(np.abs(got - ref) / np.abs(ref)))

    print(f"scale-and-shift alignment, B={args.batch}, {args.size}x{args.size}, 40% mask, best of {args.repeats}")
    print(f"CPU: {cpu_name()}, torch threads {torch.get_num_threads()}")
    print(f"{'method':<36} {'ms':>9} {'speed-up':>9}")
    print(f"{'numpy.linalg.lstsq, per-image loop':<36} {1e3 * t_loop:>9.1f} {1.0:>8.1f}x")
    print(f"{'amodal.align (numpy, batched)':<36} {1e3 * t_numpy:>9.1f} {t_loop / t_numpy:>8.1f}x")
    print(f"{'amodal.align (torch, batched)':<36} {1e3 * t_batched:>9.1f} {t_loop / t_batched:>8.1f}x")
    print(f"{'torch array ops (the GPU path)':<36} {1e3 * t_general:>9.1f} {t_loop / t_general:>8.1f}x")
    print(f"max relative difference to lstsq: {rel:.2e}")


if __name__ == "__main__":
    main()
