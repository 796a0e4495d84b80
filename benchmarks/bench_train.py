"""Training speed: one optimiser step (forward, backward, clip, Adam) of each model.

CPU mode (default): the tiny networks the quick profile trains — Amodal-DAV2 on the
``TINY`` config at 112² and Amodal-DepthFM's tiny UNet at 32² — in images/s and ms per
step, with the plain model of the same shape as the baseline in the same run (DAV2
without the guidance embedding; DepthFM with 8 input channels), so the table shows what
the amodal inputs cost.

GPU mode (``--gpu``): Amodal-DAV2-S/B/L at 518² and Amodal-DepthFM (the official UNet
shape, SD's VAE frozen) at 512², bf16 autocast, ``torch.compile`` on and off, with
images/s, peak memory and MFU = training FLOPs per image × images/s / the card's dense
bf16 peak (``costs.PEAK_BF16_TFLOPS``). Training FLOPs (forward + backward) are counted
with ``torch.utils.flop_counter``, attention included (``costs.count_training_flops``).
The goal of the training recipe: Amodal-DAV2-L ≥ 100 img/s on one H100/H200 (≈ 50 % MFU).

    python benchmarks/bench_train.py
    python benchmarks/bench_train.py --gpu --compile --batch 8

Weights are random: speed does not depend on their values.
"""
from __future__ import annotations

import argparse
import sys

import torch

from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2
from amodal.models.configs import TINY
from amodal.models.depthfm import DepthFM, tiny_amodal_depthfm
from amodal.training.objectives import FlowMatchingLoss, amodal_dav2_objective
from costs import PeakMemory, count_training_flops, gpu_header, release, tf32_note
from timing import cpu_name, median_seconds


def batch_of(size: int, n: int, device: str) -> dict:
    """A training batch of random images, a box-shaped object half hidden, random depth."""
    g = torch.Generator().manual_seed(0)
    amodal = torch.zeros(n, 1, size, size)
    amodal[:, :, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    visible = amodal.clone()
    visible[:, :, :, size // 2:] = 0
    data = {"image": torch.rand(n, 3, size, size, generator=g), "amodal_mask": amodal, "visible_mask": visible,
            "observed_depth": torch.rand(n, 1, size, size, generator=g),
            "target_depth": torch.rand(n, 1, size, size, generator=g)}
    return {k: v.to(device) for k, v in data.items()}


def dav2_loss(model, batch):
    if model.amodal:
        return amodal_dav2_objective()(model, batch)
    prediction = model(batch["image"])  # the plain network: the same loss, no guidance
    return (prediction - batch["target_depth"]).square().mean()


def depthfm_loss(model, batch):
    if isinstance(model, FlowMatchingLoss):
        return model(batch)
    return model.training_loss(batch["image"], batch["target_depth"], loss_mask=batch["amodal_mask"] > 0)


def step_fn(model, loss_fn, batch, parameters, bf16: bool, device: str):
    """One optimiser step as the trainer takes it."""
    optimizer = torch.optim.Adam(parameters, lr=1e-6)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, batch).float()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 0.01)
        optimizer.step()

    return step


def measure(label, build, loss_fn, batch, repeats, device, memory, bf16=False, compile_backend=None):
    """(label, seconds per step, training FLOPs per step, peak MiB); the model is freed on return."""
    memory.reset()
    model = build().to(device).train()
    parameters = [p for p in (model.model.unet if isinstance(model, FlowMatchingLoss) else model).parameters()
                  if p.requires_grad]
    flops = count_training_flops(lambda: loss_fn(model, batch).backward())
    net = torch.compile(model, backend=compile_backend) if compile_backend else model
    step = step_fn(net, loss_fn, batch, parameters, bf16, device)
    for _ in range(2 if compile_backend else 1):  # warm-up (and compilation) outside the timed runs
        step()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    seconds = median_seconds(step, repeats, sync)
    return label, seconds, flops, memory.peak_mib()


def print_rows(rows, batch_size, peak_tflops=None):
    base = rows[0][1]
    print(f"{'model':34s} {'ms/step':>9s} {'img/s':>8s} {'GFLOP/step':>11s} {'vs base':>8s} {'MFU':>6s} {'peak MiB':>9s}")
    for label, seconds, flops, peak in rows:
        mfu = f"{100 * flops / seconds / 1e12 / peak_tflops:5.1f}%" if peak_tflops and "bf16" in label else "   – "
        print(f"{label:34s} {seconds * 1e3:9.1f} {batch_size / seconds:8.2f} {flops / 1e9:11.2f} "
              f"{base / seconds:7.2f}x {mfu:>6s} {peak:9.0f}")


def bench_cpu(repeats: int, batch_size: int) -> None:
    memory = PeakMemory("cpu")
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; batch {batch_size}, "
          f"median of {repeats} steps")
    print(f"{memory.method}\n")
    dav2_batch, fm_batch = batch_of(112, batch_size, "cpu"), batch_of(32, batch_size, "cpu")

    def plain_depthfm():
        amodal = tiny_amodal_depthfm(seed=0)
        unet = type(amodal.unet).from_config({**amodal.unet.config, "in_channels": 8})
        return DepthFM(unet, amodal.autoencoder, amodal.empty_text_embedding, amodal.noising_step)

    rows = []
    for label, build in (("DAV2 TINY 112² (base)", lambda: DepthAnythingV2(TINY)),
                         ("Amodal-DAV2 TINY 112²", lambda: AmodalDAV2(TINY))):
        rows.append(measure(label, build, dav2_loss, dav2_batch, repeats, "cpu", memory))
        release()
    print_rows(rows, batch_size)
    print()
    rows = []
    for label, build in (("DepthFM tiny 32² (base)", plain_depthfm),
                         ("Amodal-DepthFM tiny 32²", lambda: FlowMatchingLoss(tiny_amodal_depthfm(seed=0)))):
        rows.append(measure(label, build, depthfm_loss, fm_batch, repeats, "cpu", memory))
        release()
    print_rows(rows, batch_size)


def bench_gpu(sizes, repeats: int, batch_size: int, compile_model: bool, peak_tflops: float | None) -> int:
    opened = gpu_header(peak_tflops)
    if opened is None:
        return 2
    peak, memory = opened
    from bench_depthfm import full_model

    print(f"batch {batch_size} per step, median of {repeats} steps; fp32 baseline: {tf32_note()}; {memory.method}\n")
    modes = [("fp32", False, None), ("bf16", True, None)] + ([("bf16 compile", True, "inductor")] if compile_model else [])
    dav2_batch = batch_of(518, batch_size, "cuda")
    for size in sizes:
        rows = []
        for mode, bf16, backend in modes:
            def build(size=size):
                model = AmodalDAV2(size)
                model.set_gradient_checkpointing(size in ("l", "g"))  # as the recipe trains it
                return model
            rows.append(measure(f"Amodal-DAV2-{size.upper()} 518² {mode}", build, dav2_loss, dav2_batch, repeats,
                                "cuda", memory, bf16, backend))
            torch._dynamo.reset()
            release()
        print_rows(rows, batch_size, peak)
        print()
    fm_batch = batch_of(512, batch_size, "cuda")
    rows = []
    for mode, bf16, backend in modes:
        def build():
            model = full_model(None, None)
            model.autoencoder.requires_grad_(False)
            return FlowMatchingLoss(model, time_grid=400)
        rows.append(measure(f"Amodal-DepthFM 512² {mode}", build, depthfm_loss, fm_batch, repeats, "cuda", memory,
                            bf16, backend))
        torch._dynamo.reset()
        release()
    print_rows(rows, batch_size, peak)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="GPU mode (518² / 512², bf16)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (GPU mode)")
    parser.add_argument("--sizes", nargs="+", default=["s", "b", "l"], choices=["s", "b", "l", "g"])
    parser.add_argument("--batch", type=int, default=None, help="images per step (CPU 8, GPU 8)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the card's bf16 peak")
    args = parser.parse_args(argv)
    if args.gpu:
        return bench_gpu(args.sizes, args.repeats or 10, args.batch or 8, args.compile, args.peak_tflops)
    bench_cpu(args.repeats or 5, args.batch or 8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
