"""What one Amodal-DAV2 prediction costs on a CPU at full size: torch, onnxruntime, the official code.

For each size (default ViT-S and ViT-L at 518², batch 1, float32, random weights), the
same weights run in:

- **ours, torch** (the baseline): :class:`amodal.AmodalDAV2` in its default fast mode
  (SDPA attention, channels-last head), eager;
- **ours, onnxruntime**: the same network written by :func:`amodal.models.onnx_model.export_onnx`
  and run by :class:`~amodal.models.onnx_model.OnnxAmodalDAV2` (what ``predict`` runs for
  an ``.onnx`` file);
- **official**: the guided network of your clone of zhyever/Amodal-Depth-Anything
  (``--official PATH``, as ``scripts/compare_official.py`` takes it; nothing is
  downloaded), the row left out without it. It is built with its own code and random
  weights, and ours load those weights through the released checkpoint's layout.

torch and onnxruntime get the same number of intra-op threads (``--threads``, printed).
The contenders are called in turns after one warm-up each (``timing.interleaved_times``),
so that other work on a shared machine slows all alike; the median and the best are
printed. FLOPs are counted once per size from the architecture (``costs.count_flops``:
``torch.utils.flop_counter`` on one forward, attention included), and GFLOP/s = FLOPs /
median time. The last column is the largest difference of each output from ours in torch.

    python benchmarks/bench_onnx.py                                # S and L, 518², 3 calls each
    python benchmarks/bench_onnx.py --sizes s --threads 2 --official ../Amodal-Depth-Anything
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from amodal import AmodalDAV2
from amodal.models.onnx_model import OnnxAmodalDAV2, export_onnx
from amodal.utils.optional import require
from costs import count_flops, release
from timing import cpu_name, interleaved_times

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "ours, torch (SDPA)"


def _compare_official():
    """``scripts/compare_official.py`` (imports the official code from a clone; not a package)."""
    spec = importlib.util.spec_from_file_location("compare_official_for_bench", ROOT / "scripts" / "compare_official.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(resolution: int):
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, resolution, resolution, generator=generator)
    amodal_mask = torch.zeros(1, 1, resolution, resolution)
    amodal_mask[..., resolution // 4: 3 * resolution // 4, resolution // 3:] = 1
    observed_depth = torch.rand(1, 1, resolution, resolution, generator=generator)
    return image, amodal_mask, observed_depth


def _networks(size: str, official_module, compare):
    """``(ours in torch, official or None)`` with the same random weights."""
    if official_module is None:
        torch.manual_seed(0)
        return compare.perturb(AmodalDAV2(size), 0), None  # perturbed: the guidance path is not zero
    official, ours = compare.amodal_pair(official_module, f"vit{size}", modes=("fast",))
    return ours["fast"], official


def rows_for(size: str, resolution: int, repeats: int, threads: int, official_module, compare) -> tuple[list, float]:
    """Rows ``(runtime, median s, best s, GFLOP, max |Δ| from ours in torch)`` for one size, and the export time."""
    image, amodal_mask, observed_depth = _inputs(resolution)
    ours, official = _networks(size, official_module, compare)
    flops = count_flops(lambda: ours(image, amodal_mask, observed_depth))
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        path = export_onnx(ours, Path(scratch) / "model.onnx")
        export_seconds = time.perf_counter() - start
        exported = OnnxAmodalDAV2(path, threads=threads)
    fns = {BASELINE: lambda: ours(image, amodal_mask, observed_depth),
           "ours, onnxruntime": lambda: exported(image, amodal_mask, observed_depth)}
    if official is not None:
        normalised = (image - compare.official_code.IMAGENET_MEAN) / compare.official_code.IMAGENET_STD
        guidance = torch.cat([amodal_mask * 2 - 1, observed_depth * 2 - 1], 1)
        fns["official (torch)"] = lambda: official(normalised, guidance)
    with torch.no_grad():
        reference = fns[BASELINE]()
        gaps = {name: (fn().double() - reference.double()).abs().max().item() for name, fn in fns.items()}
        times = interleaved_times(fns, repeats)
    rows = [(name, statistics.median(t), min(t), flops / 1e9, gaps[name]) for name, t in times.items()]
    return rows, export_seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["s", "l"], choices=["s", "b", "l", "g"])
    parser.add_argument("--resolution", type=int, default=518, help="image side (a multiple of 14)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each runtime, after one warm-up")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads for torch and onnxruntime alike (default: torch's)")
    parser.add_argument("--official", type=Path, help="your clone of zhyever/Amodal-Depth-Anything (optional)")
    args = parser.parse_args(argv)
    if args.resolution % 14:
        parser.error("--resolution must be a multiple of 14")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    compare = _compare_official()
    official_module, official_line = None, "official: not measured (no --official clone given)"
    if args.official:
        try:
            official_module = compare.official_code.import_package_module("official", args.official, "official_amodal_dav2", "dpt")
        except compare.OfficialCodeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        official_line = f"official: {compare.EXPECTED['official'][1]} at {compare.official_code.commit_of(args.official)}"
    onnxruntime = require("onnxruntime", "the benchmark runs the exported network with it")
    print(f"CPU: {cpu_name()}; {threads} intra-op threads for torch {torch.__version__} and onnxruntime "
          f"{onnxruntime.__version__}")
    print(f"Amodal-DAV2, batch 1, {args.resolution}², float32, random weights; median and best of {args.repeats} "
          "calls each after one warm-up, runtimes in turns (a shared machine inflates times)")
    print(f"{official_line}\n")
    print(f"{'model':6s} {'runtime':22s} {'median s':>9s} {'best s':>8s} {'GFLOP':>7s} {'GFLOP/s':>8s} "
          f"{'vs torch':>9s} {'max |Δ|':>9s}")
    notes = []
    for size in args.sizes:
        rows, export_seconds = rows_for(size, args.resolution, args.repeats, threads, official_module, compare)
        release()
        base = rows[0][1]
        for name, median, best, gflop, gap in rows:
            print(f"ViT-{size.upper():2s} {name:22s} {median:9.3f} {best:8.3f} {gflop:7.1f} {gflop / median:8.1f} "
                  f"{base / median:8.2f}x {gap:9.1e}")
        notes.append(f"ViT-{size.upper()}: export to ONNX took {export_seconds:.0f} s (once per network)")
    print("\n" + "\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
