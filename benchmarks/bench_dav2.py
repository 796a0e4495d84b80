"""Forward speed of Depth Anything V2 (the Amodal-DAV2 backbone) at 518 × 518.

CPU mode (default): images/s for ViT-S and ViT-B, batch 1, in our default fast mode
(timm's fused attention, channels-last head) and, as the baseline measured in the same
run, the exact mode (``set_exact(True)``: step-by-step attention and contiguous head, the
official code's arithmetic, bit for bit).

GPU mode (``--gpu``): bf16 autocast, optionally ``torch.compile``, a batch of images;
prints images/s and model FLOP utilisation (MFU) = FLOPs per image × images/s / the card's
dense bf16 peak. The fp32 eager run is the baseline in the same table. FLOPs are counted
with ``torch.utils.flop_counter`` on one forward (matmuls and convolutions).

    python benchmarks/bench_dav2.py                      # CPU, S and B
    python benchmarks/bench_dav2.py --gpu --compile --batch 16 --sizes s b l

Weights are random: speed does not depend on their values.
"""
from __future__ import annotations

import argparse
import sys

import torch

from amodal.models.amodal_dav2 import DepthAnythingV2
from timing import cpu_name, median_seconds

# dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.4,  # SXM / HBM3
    "H200": 989.4,
    "GH200": 989.4,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
}


BASELINE = "exact (official arithmetic)"




def count_flops(model: torch.nn.Module, image: torch.Tensor) -> float:
    """FLOPs of one forward (matmul / conv; 2 per multiply-add), step-by-step attention."""
    from torch.utils.flop_counter import FlopCounterMode

    model.set_fused_attention(False)  # explicit matmuls: counted on every backend
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(image)
    model.set_fused_attention(True)
    return float(counter.get_total_flops())




def bench_cpu(sizes, repeats: int, resolution: int) -> None:
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"batch 1, {resolution}², median of {repeats} runs (timings on a shared machine are inflated)\n")
    print(f"{'model':6s} {'mode':28s} {'ms/img':>9s} {'img/s':>7s} {'GFLOP':>7s} {'speed-up':>9s}")
    image = torch.rand(1, 3, resolution, resolution)
    for size in sizes:
        model = DepthAnythingV2(size).eval()
        gflop = count_flops(model, image) / 1e9
        rows = {}
        with torch.no_grad():
            for label, exact in ((BASELINE, True), ("fast (SDPA, channels-last)", False)):
                model.set_exact(exact)
                rows[label] = median_seconds(lambda: model(image), repeats)
        base = rows[BASELINE]
        for label, seconds in rows.items():
            print(f"ViT-{size.upper():2s} {label:28s} {seconds * 1e3:9.1f} {1 / seconds:7.2f} {gflop:7.1f} {base / seconds:8.2f}x")


def bench_gpu(sizes, repeats: int, resolution: int, batch: int, compile_model: bool, peak_tflops: float | None) -> int:
    if not torch.cuda.is_available():
        print("GPU mode: no CUDA device is present on this machine; nothing was measured.")
        return 2
    name = torch.cuda.get_device_name()
    peak = peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    print(f"GPU: {name}, bf16 peak {peak or 'unknown (pass --peak-tflops)'} TFLOP/s, torch {torch.__version__}")
    print(f"batch {batch}, {resolution}², median of {repeats} runs\n")
    print(f"{'model':6s} {'mode':22s} {'img/s':>9s} {'TFLOP/s':>8s} {'MFU':>6s}")
    image = torch.rand(batch, 3, resolution, resolution, device="cuda")
    sync = torch.cuda.synchronize
    for size in sizes:
        model = DepthAnythingV2(size).cuda().eval()
        flops = count_flops(model, image[:1])
        modes = [("fp32 eager", model, False), ("bf16 eager", model, True)]
        if compile_model:
            modes.append(("bf16 torch.compile", torch.compile(model), True))
        for label, net, bf16 in modes:
            def step():
                with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                    net(image)
            if "compile" in label:
                for _ in range(3):  # compile and autotune outside the timed runs
                    step()
            seconds = median_seconds(step, repeats, sync)
            rate = batch / seconds
            achieved = flops * rate / 1e12
            mfu = f"{100 * achieved / peak:5.1f}%" if peak and bf16 else "   – "
            print(f"ViT-{size.upper():2s} {label:22s} {rate:9.1f} {achieved:8.1f} {mfu:>6s}")
        del model
        torch.cuda.empty_cache()
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
