"""Sampling latency of Amodal-DepthFM against Euler steps and samples, with FLOPs per step.

CPU mode (default): the quick profile's tiny model (pixel-space autoencoder, 32² images),
seconds per call of ``AmodalDepthFM.sample`` for steps × samples, and as the baseline in
the same run the 8-channel DepthFM it was widened from (the two guidance channels should
cost nothing measurable).

GPU mode (``--gpu``): the full DepthFM UNet (SD-2 topology, 865M parameters, built from the
official ``ldm_hparams``) widened to 10 channels, SD's VAE, images of 512² in bf16
autocast; the fp32 UNet step is the baseline in the same table, and the header says
whether it runs in TF32. Weights are random (speed does not depend on them) unless
``--checkpoint``/``--vae`` are given. Without a CUDA device the GPU mode says so and exits.

FLOPs are counted with ``torch.utils.flop_counter`` on one UNet call (matmuls,
convolutions and attention, 2 per multiply-add; attention is counted on the CPU too, see
``costs.py``) and printed beside the time. Each model is freed before the next is built,
and its peak memory is reported (the header says how it is measured). The official
UNet's speed is timed by ``scripts/compare_official.py`` against the user's own checkout.

    python benchmarks/bench_depthfm.py --threads 1
    python benchmarks/bench_depthfm.py --gpu --samples 1 4 --steps 1 2 4
"""
from __future__ import annotations

import argparse

import torch

from amodal.models import depthfm
from amodal.scenes.toy_occlusion import ambiguous_occlusion_batch
from costs import PeakMemory, count_flops, release, tf32_note
from timing import cpu_name, median_seconds

DEPTHFM_HPARAMS = {
    "image_size": 32, "in_channels": 8, "out_channels": 4, "model_channels": 320,
    "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
    "num_heads": 8, "use_spatial_transformer": True, "use_linear_in_transformer": True,
    "transformer_depth": 1, "context_dim": 1024, "legacy": False,
}


def unet_flops(model, batch: int, size: int) -> int:
    """FLOPs of one UNet call (one Euler step) for ``batch`` latents of ``size``²."""
    device = model.empty_text_embedding.device
    c = model.autoencoder.latent_channels
    x = torch.randn(batch, c, size, size, device=device)
    cond = torch.randn(batch, c + model.extra_channels, size, size, device=device)
    return count_flops(lambda: model.velocity(x, torch.full((batch,), 0.5, device=device), cond))


def scene(size: int, device: str):
    data = ambiguous_occlusion_batch(1, size, torch.Generator().manual_seed(0))
    return {k: v.to(device) for k, v in data.items()}


def tiny_depthfm() -> depthfm.DepthFM:
    """The 8-channel DepthFM of the tiny model's shape (its own random weights)."""
    hparams = depthfm.tiny_ldm_hparams()
    return depthfm.DepthFM(depthfm.build_unet(hparams), depthfm.PixelAutoencoder(4, 4),
                           torch.randn(1, 4, hparams["context_dim"]))


def cpu_rows(build, steps_list, samples_list, repeats: int, data, memory: PeakMemory):
    """(samples, steps, seconds per call, FLOPs per step) for the model ``build()`` makes,
    the model's parameter count and its peak MiB; the model is freed on return."""
    memory.reset()
    model = build().eval()
    latent = data["image"].shape[-1] // model.autoencoder.downsample
    rows = []
    for n in samples_list:
        flops = unet_flops(model, n, latent)
        for steps in steps_list:
            if isinstance(model, depthfm.AmodalDepthFM):
                call = lambda: model.sample(data["image"], amodal_mask=data["amodal_mask"],  # noqa: E731
                                            observed_depth=data["observed_depth"], n=n, steps=steps, visible_mask=data["visible_mask"])
            else:
                call = lambda: model.sample(data["image"], n=n, steps=steps)  # noqa: E731
            rows.append((n, steps, median_seconds(call, repeats), flops))
    return rows, sum(p.numel() for p in model.unet.parameters()), memory.peak_mib()


def run_cpu(steps_list, samples_list, repeats: int) -> None:
    from diffusers import UNet2DConditionModel  # noqa: F401  imported now: its ~100 MiB are not the first model's

    torch.manual_seed(0)
    memory = PeakMemory("cpu")
    data = scene(32, "cpu")
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"tiny UNets, 32² images, {32 // 4}² latents")
    print(memory.method)
    print(f"{'model':<14}{'params':>9}{'samples':>8}{'steps':>6}{'ms/call':>10}{'ms/step':>9}{'MFLOP/step':>12}"
          f"{'peak MiB':>10}")
    for name, build in (("DepthFM (8ch)", tiny_depthfm), ("Amodal (10ch)", depthfm.tiny_amodal_depthfm)):
        rows, params, peak = cpu_rows(build, steps_list, samples_list, repeats, data, memory)
        release()
        for n, steps, seconds, flops in rows:
            print(f"{name:<14}{params:>9,}{n:>8}{steps:>6}{1e3 * seconds:>10.1f}{1e3 * seconds / steps:>9.1f}"
                  f"{flops / 1e6:>12.1f}{peak:>10.0f}")


def full_model(checkpoint, vae) -> depthfm.AmodalDepthFM:
    """Amodal-DepthFM from ``checkpoint`` or, by default, random weights in the official shape."""
    from diffusers import AutoencoderKL

    if checkpoint:
        return depthfm.AmodalDepthFM.from_depthfm(checkpoint, vae=vae)
    unet = depthfm.build_unet(DEPTHFM_HPARAMS)
    sd_vae = depthfm.load_autoencoder(vae) if vae else depthfm.SDAutoencoder(AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2))
    return depthfm.AmodalDepthFM.from_depthfm(depthfm.DepthFM(unet, sd_vae, torch.randn(1, 77, 1024)))


def run_gpu(steps_list, samples_list, repeats: int, resolution: int, checkpoint, vae) -> None:
    if not torch.cuda.is_available():
        print("GPU mode: no CUDA device is present on this machine; nothing was measured.")
        return
    device, sync = "cuda", torch.cuda.synchronize
    memory = PeakMemory(device)
    model = full_model(checkpoint, vae).to(device).eval()
    data = scene(resolution, device)
    latent = resolution // model.autoencoder.downsample
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}; "
          f"UNet {sum(p.numel() for p in model.unet.parameters()) / 1e6:.0f}M params, {resolution}² images")
    print(f"fp32 baseline: {tf32_note()}; {memory.method}")
    c = model.autoencoder.latent_channels
    x = torch.randn(1, c, latent, latent, device=device)
    cond = torch.randn(1, c + 2, latent, latent, device=device)
    t = torch.full((1,), 0.5, device=device)
    step_flops = unet_flops(model, 1, latent)
    parts = []
    with torch.no_grad():
        for label, bf16, fn in (("UNet step fp32 (base)", False, lambda: model.velocity(x, t, cond)),
                                ("UNet step bf16", True, lambda: model.velocity(x, t, cond)),
                                ("VAE encode bf16", True, lambda: model.encode_image(data["image"])),
                                ("VAE decode bf16", True, lambda: model.decode_depth(x))):
            memory.reset()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                parts.append((label, median_seconds(fn, repeats, sync), memory.peak_mib()))
    print(f"{'part':<22}{'ms':>9}{'TFLOP':>8}{'TFLOP/s':>9}{'peak MiB':>10}")
    for label, seconds, peak in parts:
        flops = f"{step_flops / 1e12:>8.2f}{step_flops / seconds / 1e12:>9.1f}" if "UNet" in label else " " * 17
        print(f"{label:<22}{1e3 * seconds:>9.1f}{flops}{peak:>10.0f}")
    print(f"{'samples':>8}{'steps':>6}{'ms/call':>10}{'TFLOP/step':>12}{'peak MiB':>10}")
    for n in samples_list:
        for steps in steps_list:
            def call():
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    model.sample(data["image"], amodal_mask=data["amodal_mask"], observed_depth=data["observed_depth"],
                                 n=n, steps=steps, visible_mask=data["visible_mask"])
            memory.reset()
            seconds = median_seconds(call, repeats, sync)
            print(f"{n:>8}{steps:>6}{1e3 * seconds:>10.1f}{step_flops * n / 1e12:>12.2f}{memory.peak_mib():>10.0f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="the full model at --resolution on CUDA, bf16")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (1 is fastest on shared cores)")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--checkpoint", default=None, help="depthfm-v1.ckpt (GPU mode; default random weights)")
    parser.add_argument("--vae", default=None, help="SD VAE folder or file (GPU mode)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.gpu:
        run_gpu(args.steps, args.samples, args.repeats, args.resolution, args.checkpoint, args.vae)
    else:
        run_cpu(args.steps, args.samples, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
