"""benchmarks/costs.py (card peaks, FLOPs with attention, peak memory) and the CPU benchmarks' smoke runs."""
import importlib.util
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from official_testdata import write_dav2_clones

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    """Import a file of benchmarks/ by path (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


costs = _load("costs")
timing = _load("timing")


# ------------------------------------------------------------------ the card's peak


@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA L4", 121.0),
    ("NVIDIA L40", 181.0),    # a substring match gave the L4's 121
    ("NVIDIA L40S", 362.0),   # and this one the L40's or the L4's
    ("NVIDIA H100 PCIe", 756.0),
    ("NVIDIA H100 80GB HBM3", 989.4),
    ("NVIDIA H200", 989.4),
    ("NVIDIA A100-SXM4-80GB", 312.0),
])
def test_peak_lookup_is_exact(name, tflops):
    assert costs.peak_bf16_tflops(name) == tflops


@pytest.mark.parametrize("name", ["NVIDIA H100 NVL", "NVIDIA L4 Ultra", "NVIDIA A10", "Tesla T4", ""])
def test_unknown_cards_get_no_peak(name):
    # "H100 NVL" contains "H100", "L4 Ultra" contains "L4", "A10" is inside "A10G": none may match.
    assert costs.peak_bf16_tflops(name) is None


# ------------------------------------------------------------------------- FLOPs


def test_self_attention_flops_on_cpu_match_hand_count():
    b, h, length, d = 2, 3, 5, 4
    q, k, v = (torch.randn(b, h, length, d) for _ in range(3))
    flops = costs.count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert flops == 2400  # 4·B·H·L²·D = 4·2·3·25·4, by hand


def test_cross_attention_flops_match_hand_count():
    # Lq 6, Lk 10, D 8, Dv 16: QKᵀ 2·1·2·6·10·8 = 1920, then ·V 2·1·2·6·10·16 = 3840
    q, k, v = torch.randn(1, 2, 6, 8), torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 16)
    assert costs.count_flops(lambda: F.scaled_dot_product_attention(q, k, v)) == 1920 + 3840


def test_fused_attention_counts_as_the_explicit_matmuls():
    # The math backend runs two bmm's, which PyTorch's own formulas count: an independent total.
    q, k, v = (torch.randn(2, 8, 256, 40) for _ in range(3))  # shapes that take the fused CPU kernel
    fused = costs.count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    with sdpa_kernel(SDPBackend.MATH):
        explicit = costs.count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert explicit > 0 and fused == explicit


def test_training_flops_count_attentions_backward_on_cpu():
    """Forward 2·B·H·Lq·Lk·(D + Dv) plus backward 2·B·H·Lq·Lk·(3·D + 2·Dv), by hand; the math
    backend's explicit matmuls, which PyTorch counts itself, give the same total less the
    recomputed scores (2·B·H·Lq·Lk·D), which the math backend keeps instead."""
    b, h, length, d = 2, 8, 256, 40  # shapes that take the fused CPU kernel
    q, k, v = (torch.randn(b, h, length, d, requires_grad=True) for _ in range(3))
    fused = costs.count_training_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    assert fused == 2 * b * h * length * length * (2 * d) + 2 * b * h * length * length * (3 * d + 2 * d)
    with sdpa_kernel(SDPBackend.MATH):
        explicit = costs.count_training_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    assert fused == explicit + 2 * b * h * length * length * d


# ------------------------------------------------------------------- peak memory


def test_cpu_peak_memory_is_per_stretch():
    meter = costs.PeakMemory("cpu")
    if "reset per model" not in meter.method:
        pytest.skip("this system cannot reset the peak resident set")
    def touch(mib):
        # fresh pages from an anonymous mapping: a malloc'd block could reuse pages the
        # process already holds (after other tests), and add nothing to the resident set
        block = mmap.mmap(-1, mib * 2**20)
        for offset in range(0, mib * 2**20, mmap.PAGESIZE):
            block[offset] = 1
        block.close()

    meter.reset()
    touch(64)
    first = meter.peak_mib()
    meter.reset()
    touch(8)
    second = meter.peak_mib()
    assert 60 < first < 64 + 32  # a few pages of the baseline may be returned meanwhile
    assert 6 < second < 32  # the 64 MiB of the first stretch is forgotten


def test_tf32_note_says_both_settings():
    note = costs.tf32_note()
    assert "matmuls o" in note and "convolutions o" in note


def test_interleaved_times_take_turns():
    calls = []
    times = timing.interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # one warm-up each, then in turns
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for v in times.values() for t in v)


# ------------------------------------------------------------- the scripts still run


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_bench_dav2_cpu_prints_flops_and_peak_memory():
    out = _run("bench_dav2.py", "--sizes", "s", "--resolution", "56", "--repeats", "1")
    assert "peak MiB" in out and "ViT-S" in out and "GFLOP" in out


@pytest.mark.slow
def test_bench_depthfm_cpu_prints_flops_and_peak_memory():
    out = _run("bench_depthfm.py", "--steps", "1", "--samples", "1", "--repeats", "1", "--threads", "1")
    assert "peak MiB" in out and "Amodal (10ch)" in out and "DepthFM (8ch)" in out


@pytest.mark.slow
def test_bench_train_cpu_prints_both_models_against_their_base():
    out = _run("bench_train.py", "--repeats", "1", "--batch", "2")
    assert "DAV2 TINY 112² (base)" in out and "Amodal-DAV2 TINY 112²" in out
    assert "DepthFM tiny 32² (base)" in out and "Amodal-DepthFM tiny 32²" in out and "GFLOP/step" in out


@pytest.mark.slow
def test_bench_onnx_prints_every_runtime_with_flops(tmp_path):
    """ViT-S at 28² (2 × 2 patches), against a stand-in official clone (tests/official_testdata.py)."""
    pytest.importorskip("onnxruntime")
    _, official = write_dav2_clones(tmp_path)
    out = _run("bench_onnx.py", "--sizes", "s", "--resolution", "28", "--repeats", "1", "--threads", "1",
               "--official", str(official))
    assert "1 intra-op threads for torch" in out and "onnxruntime 1." in out and "CPU: " in out
    assert "official: zhyever/Amodal-Depth-Anything at commit unknown" in out
    rows = {line[7:29].strip(): line.split() for line in out.splitlines() if line.startswith("ViT-S ")}
    assert set(rows) == {"ours, torch (SDPA)", "ours, onnxruntime", "official (torch)"}
    for name, fields in rows.items():
        gflop, rate, gap = float(fields[-5]), float(fields[-4]), float(fields[-1])
        assert gflop > 0 and rate > 0 and gap < 1e-4, (name, fields)
    assert rows["ours, torch (SDPA)"][-2] == "1.00x"
    assert "export to ONNX took" in out


@pytest.mark.slow
@pytest.mark.parametrize("script", ["bench_dav2.py", "bench_depthfm.py", "bench_train.py"])
def test_gpu_mode_without_cuda_says_so(script):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--gpu"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert "no CUDA device" in out.stdout
