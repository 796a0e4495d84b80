"""Shared by the benchmark scripts: what a run costs besides time.

* **FLOPs** of one forward, from ``torch.utils.flop_counter`` (2 per multiply-add), with
  attention counted on every device. PyTorch knows the FLOPs of its CUDA attention
  kernels but not of the CPU one (``_scaled_dot_product_flash_attention_for_cpu``), so a
  plain counter leaves attention out on the CPU and keeps it on a GPU. Here the CPU
  kernel gets the same formula: ``2·B·H·Lq·Lk·D`` for ``Q Kᵀ`` plus ``2·B·H·Lq·Lk·Dv``
  for the weighted sum of ``V`` (softmax and scaling not counted, as for the CUDA
  kernels): ``4·B·H·L²·D`` for self-attention.
* **Peak memory** of one stretch (one model): on CUDA the most memory held by tensors
  (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``); on a Linux
  CPU the process's peak resident set (``VmHWM``, reset by writing 5 to
  ``/proc/self/clear_refs``) above its resident set at the reset, i.e. what the model's
  weights and activations added; elsewhere the process's lifetime peak (``ru_maxrss``).
* **The card's peak**: dense bf16 tensor-core TFLOP/s from the vendors' data sheets, looked
  up by the exact name ``torch.cuda.get_device_name()`` reports (a substring match would
  give an L40 the L4's peak), and whether the fp32 baseline runs in TF32.

The scripts run as ``python benchmarks/bench_<topic>.py``, so this folder is on
``sys.path`` and ``from costs import ...`` finds this file.
"""
from __future__ import annotations

import ctypes
import gc
import re
import resource
import sys
from pathlib import Path

import torch

# Dense (not 2:4-sparse) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets,
# keyed by the name torch.cuda.get_device_name() reports, less its "NVIDIA " prefix.
PEAK_BF16_TFLOPS = {
    "H100 80GB HBM3": 989.4,  # SXM
    "H100 PCIe": 756.0,
    "H200": 989.4,  # SXM
    "GH200 480GB": 989.4,
    "A100-SXM4-80GB": 312.0,
    "A100-SXM4-40GB": 312.0,
    "A100-PCIE-40GB": 312.0,
    "A100 80GB PCIe": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "L4": 121.0,
    "A10G": 70.0,
}

_CPU_ATTENTION = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def peak_bf16_tflops(device_name: str) -> float | None:
    """The card's dense bf16 peak, or ``None`` for a card not in the table.

    Args:
        device_name: as ``torch.cuda.get_device_name()`` reports it, e.g. ``"NVIDIA L40"``.
    """
    name = " ".join(device_name.split())
    name = name[len("NVIDIA "):] if name.startswith("NVIDIA ") else name
    return PEAK_BF16_TFLOPS.get(name)


def attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``softmax(Q Kᵀ) V`` for ``Q`` (B, H, Lq, D), ``K`` (B, H, Lk, D), ``V`` (B, H, Lk, Dv).

    Two matrix products, 2 FLOPs per multiply-add: ``2·B·H·Lq·Lk·(D + Dv)``. The extra
    arguments of the attention kernel (dropout, mask, scale) are accepted and ignored.
    """
    b, h, lq, d = query_shape
    lk, dv = key_shape[-2], value_shape[-1]
    return 2 * b * h * lq * lk * (d + dv)


def count_flops(fn) -> int:
    """FLOPs of one call of ``fn()`` (run under ``torch.no_grad``), attention included on every device."""
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {_CPU_ATTENTION: attention_flops} if _CPU_ATTENTION is not None else {}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return counter.get_total_flops()


_CPU_ATTENTION_BACKWARD = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)


def attention_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of attention's backward pass: the scores recomputed, then four more products,
    ``2·B·H·Lq·Lk·(3·D + 2·Dv)`` (PyTorch's own count for the GPU kernels)."""
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def count_training_flops(fn) -> int:
    """FLOPs of one call of ``fn()`` with gradients on (forward and backward), attention
    included on every device: the CPU kernels get the formulas PyTorch uses for the GPU's."""
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {}
    if _CPU_ATTENTION is not None:
        mapping[_CPU_ATTENTION] = attention_flops
    if _CPU_ATTENTION_BACKWARD is not None:
        mapping[_CPU_ATTENTION_BACKWARD] = attention_backward_flops
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return counter.get_total_flops()


def tf32_note() -> str:
    """Whether float32 work on CUDA runs in TF32 now (matmuls and cuDNN convolutions apart)."""
    matmul = "on" if torch.backends.cuda.matmul.allow_tf32 else "off"
    conv = "on" if torch.backends.cudnn.allow_tf32 else "off"
    return f"TF32 in fp32 runs: matmuls {matmul}, cuDNN convolutions {conv}"


def release() -> None:
    """Return the memory of objects already deleted (and CUDA's cached blocks) before the next model.

    On glibc, freed heap pages stay resident until ``malloc_trim`` hands them back; without
    it the next model reuses them and its CPU peak (resident-set growth) reads as 0.
    """
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the peak of a later model may be understated
        pass


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


class PeakMemory:
    """Peak memory of one stretch of a benchmark: call :meth:`reset`, run, read :meth:`peak_mib`.

    Args:
        device: ``"cuda"`` or ``"cpu"``.

    Attributes:
        method: one line saying what is measured, for the table's header.
    """

    def __init__(self, device: str = "cpu"):
        self.cuda = torch.device(device).type == "cuda"
        self.baseline_kib = 0
        if self.cuda:
            self.method = "peak MiB = torch.cuda.max_memory_allocated (tensors), reset per model"
        elif self._reset_rss():
            self.method = "peak MiB = process peak RSS (VmHWM) above the RSS at the reset, reset per model"
        else:
            self.method = "peak MiB = process peak RSS since start (ru_maxrss), not per model"
        self.reset()

    @staticmethod
    def _reset_rss() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:  # "5": reset the peak RSS
                handle.write("5")
        except OSError:
            return False
        return _status_kib("VmHWM") is not None

    def reset(self) -> None:
        """Start a new stretch: forget the peaks seen so far."""
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        elif self._reset_rss():
            self.baseline_kib = _status_kib("VmRSS") or 0

    def peak_mib(self) -> float:
        """The most memory in use since :meth:`reset`, in MiB (see :attr:`method`)."""
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20
        peak = _status_kib("VmHWM")
        if peak is None:  # ru_maxrss is in KiB on Linux, bytes on macOS
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
        return max(peak - self.baseline_kib, 0) / 1024


def gpu_header(peak_tflops: float | None = None) -> tuple[float | None, "PeakMemory"] | None:
    """Print the GPU benchmarks' first line (card, bf16 peak, torch) and set up their meter.

    Args:
        peak_tflops: overrides the card's bf16 peak from :data:`PEAK_BF16_TFLOPS`.

    Returns:
        ``(peak TFLOP/s or None, PeakMemory)``, or ``None`` (after saying so) without a CUDA device.
    """
    if not torch.cuda.is_available():
        print("GPU mode: no CUDA device is present on this machine; nothing was measured.")
        return None
    name = torch.cuda.get_device_name()
    peak = peak_tflops or peak_bf16_tflops(name)
    print(f"GPU: {name}, bf16 peak {peak or 'unknown (pass --peak-tflops)'} TFLOP/s, torch {torch.__version__}")
    return peak, PeakMemory("cuda")
