"""Forward speed of Depth Anything V2 (the Amodal-DAV2 backbone) at 518 × 518.

CPU mode (default): images/s for ViT-S and ViT-B, batch 1, in our default fast mode
(timm's fused attention, channels-last head) and, as the baseline measured in the same
run, our exact mode (``set_exact(True)``: step-by-step attention and contiguous head, the
official code's arithmetic, bit for bit). This compares our two modes; the official code
itself is timed by ``scripts/compare_official.py`` against the user's own checkout.

GPU mode (``--gpu``): bf16 autocast, optionally ``torch.compile``, a batch of images;
prints images/s and model FLOP utilisation (MFU) = FLOPs per image × images/s / the card's
dense bf16 peak (``costs.PEAK_BF16_TFLOPS``, matched by the card's exact name). The fp32
eager run is the baseline in the same table; the header says whether it runs in TF32.

FLOPs are counted with ``torch.utils.flop_counter`` on one forward (matmuls, convolutions
and attention, also on the CPU; see ``costs.py``). Each model is freed before the next is
built, and its peak memory is reported (the header says how it is measured).

    python benchmarks/bench_dav2.py                      # CPU, S and B
    python benchmarks/bench_dav2.py --gpu --compile --batch 16 --sizes s b l

Weights are random: speed does not depend on their values.
"""
from __future__ import annotations

import argparse
import sys

import torch

from amodal import DepthAnythingV2
from costs import PeakMemory, count_flops, gpu_header, release, tf32_note
from timing import cpu_name, median_seconds

BASELINE = "exact (official arithmetic)"


def cpu_rows(size: str, image: torch.Tensor, repeats: int, memory: PeakMemory) -> list[tuple[str, float, float, float]]:
    """(mode, seconds per image, GFLOP per image, peak MiB) for one size; the model is freed on return."""
    memory.reset()
    model = DepthAnythingV2(size).eval()
    gflop = count_flops(lambda: model(image)) / 1e9
    seconds = {}
    with torch.no_grad():
        for label, exact in ((BASELINE, True), ("fast (SDPA, channels-last)", False)):
            model.set_exact(exact)
            seconds[label] = median_seconds(lambda: model(image), repeats)
    peak = memory.peak_mib()
    return [(label, value, gflop, peak) for label, value in seconds.items()]


def bench_cpu(sizes, repeats: int, resolution: int) -> None:
    memory = PeakMemory("cpu")
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"batch 1, {resolution}², median of {repeats} runs (timings on a shared machine are inflated)")
    print(f"{memory.method}\n")
    print(f"{'model':6s} {'mode':28s} {'ms/img':>9s} {'img/s':>7s} {'GFLOP':>7s} {'speed-up':>9s} {'peak MiB':>9s}")
    image = torch.rand(1, 3, resolution, resolution)
    for size in sizes:
        rows = cpu_rows(size, image, repeats, memory)
        release()
        base = rows[0][1]
        for label, seconds, gflop, peak in rows:
            print(f"ViT-{size.upper():2s} {label:28s} {seconds * 1e3:9.1f} {1 / seconds:7.2f} {gflop:7.1f} "
                  f"{base / seconds:8.2f}x {peak:9.0f}")


def gpu_rows(size: str, image: torch.Tensor, repeats: int, compile_model: bool,
             memory: PeakMemory) -> tuple[float, list[tuple[str, bool, float, float]]]:
    """FLOPs per image and (mode, bf16, seconds per batch, peak MiB) for one size.

    Every name bound to the model (the compiled wrapper too) is local, so all of it is
    freed on return; the peak is reset before each mode, weights stay counted.
    """
    model = DepthAnythingV2(size).cuda().eval()
    flops = count_flops(lambda: model(image[:1]))
    modes = [("fp32 eager", model, False), ("bf16 eager", model, True)]
    if compile_model:
        modes.append(("bf16 torch.compile", torch.compile(model), True))
    rows = []
    for label, net, bf16 in modes:
        def step():
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                net(image)
        memory.reset()
        if "compile" in label:
            for _ in range(3):  # compile and autotune outside the timed runs
                step()
        seconds = median_seconds(step, repeats, torch.cuda.synchronize)
        rows.append((label, bf16, seconds, memory.peak_mib()))
    return flops, rows


def bench_gpu(sizes, repeats: int, resolution: int, batch: int, compile_model: bool, peak_tflops: float | None) -> int:
    opened = gpu_header(peak_tflops)
    if opened is None:
        return 2
    peak, memory = opened
    print(f"batch {batch}, {resolution}², median of {repeats} runs; fp32 baseline: {tf32_note()}")
    print(f"{memory.method}\n")
    print(f"{'model':6s} {'mode':22s} {'img/s':>9s} {'TFLOP/s':>8s} {'MFU':>6s} {'peak MiB':>9s}")
    image = torch.rand(batch, 3, resolution, resolution, device="cuda")
    for size in sizes:
        flops, rows = gpu_rows(size, image, repeats, compile_model, memory)
        if compile_model:
            torch._dynamo.reset()  # compiled graphs hold the model's weights
        release()
        for label, bf16, seconds, peak_mib in rows:
            rate = batch / seconds
            achieved = flops * rate / 1e12
            mfu = f"{100 * achieved / peak:5.1f}%" if peak and bf16 else "   – "
            print(f"ViT-{size.upper():2s} {label:22s} {rate:9.1f} {achieved:8.1f} {mfu:>6s} {peak_mib:9.0f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="GPU mode (bf16 autocast)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (GPU mode)")
    parser.add_argument("--sizes", nargs="+", default=None, choices=["s", "b", "l", "g"])
    parser.add_argument("--batch", type=int, default=8, help="images per forward (GPU mode)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--resolution", type=int, default=518)
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the card's bf16 peak")
    args = parser.parse_args(argv)
    if args.resolution % 14:
        parser.error("--resolution must be a multiple of 14")
    if args.gpu:
        return bench_gpu(args.sizes or ["s", "b", "l"], args.repeats or 20, args.resolution, args.batch,
                         args.compile, args.peak_tflops)
    bench_cpu(args.sizes or ["s", "b"], args.repeats or 5, args.resolution)
    return 0


if __name__ == "__main__":
    sys.exit(main())
