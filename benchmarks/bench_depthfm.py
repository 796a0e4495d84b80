"""Sampling latency of Amodal-DepthFM against Euler steps and samples, with FLOPs per step.

CPU mode (default): the quick profile's tiny model (pixel-space autoencoder, 32² images),
seconds per call of ``AmodalDepthFM.sample`` for steps × samples, and as the baseline in
the same run the 8-channel DepthFM it was widened from (the two guidance channels should
cost nothing measurable).

GPU mode (``--gpu``): the full DepthFM UNet (SD-2 topology, 865M parameters, built from the
official ``ldm_hparams``) widened to 10 channels, SD's VAE, images of 512² in bf16
autocast; the fp32 UNet step is the baseline in the same table. Weights are random (speed
does not depend on them) unless ``--checkpoint``/``--vae`` are given. Without a CUDA device
the GPU mode says so and exits.

FLOPs are counted with ``torch.utils.flop_counter`` on one UNet call (matmuls and
convolutions, 2 per multiply-add) and printed beside the time.

    python benchmarks/bench_depthfm.py --threads 1
    python benchmarks/bench_depthfm.py --gpu --samples 1 4 --steps 1 2 4
"""
from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from amodal.models import depthfm
from amodal.toy_occlusion import ambiguous_occlusion_batch
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
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.velocity(x, torch.full((batch,), 0.5, device=device), cond)
    return counter.get_total_flops()




def scene(size: int, device: str):
    data = ambiguous_occlusion_batch(1, size, torch.Generator().manual_seed(0))
    return {k: v.to(device) for k, v in data.items()}


def run_cpu(steps_list, samples_list, repeats: int) -> None:
    torch.manual_seed(0)
    amodal = depthfm.tiny_amodal_depthfm().eval()
    base = depthfm.DepthFM(depthfm.build_unet(depthfm.tiny_ldm_hparams()), amodal.autoencoder,
                           amodal.empty_text_embedding).eval()
    data = scene(32, "cpu")
    latent = 32 // amodal.autoencoder.downsample
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; tiny UNet {sum(p.numel() for p in amodal.unet.parameters()):,} params, "
          f"32² images, {latent}² latents")
    print(f"{'model':<14}{'samples':>8}{'steps':>6}{'ms/call':>10}{'ms/step':>9}{'MFLOP/step':>12}")
    for name, model in (("DepthFM (8ch)", base), ("Amodal (10ch)", amodal)):
        for n in samples_list:
            flops = unet_flops(model, n, latent)
            for steps in steps_list:
                if isinstance(model, depthfm.AmodalDepthFM):
                    call = lambda: model.sample(data["image"], amodal_mask=data["amodal_mask"],  # noqa: E731
                                                observed_depth=data["observed_depth"],
                                                n=n, steps=steps, visible_mask=data["visible_mask"])
                else:
                    call = lambda: model.sample(data["image"], n=n, steps=steps)  # noqa: E731
                seconds = median_seconds(call, repeats)
                print(f"{name:<14}{n:>8}{steps:>6}{1e3 * seconds:>10.1f}{1e3 * seconds / steps:>9.1f}"
                      f"{flops / 1e6:>12.1f}")


def run_gpu(steps_list, samples_list, repeats: int, resolution: int, checkpoint, vae) -> None:
    if not torch.cuda.is_available():
        print("GPU mode: no CUDA device is present on this machine; nothing was measured.")
        return
    from diffusers import AutoencoderKL

    device, sync = "cuda", torch.cuda.synchronize
    if checkpoint:
        model = depthfm.AmodalDepthFM.from_depthfm(checkpoint, vae=vae)
    else:  # random weights in the official configuration
        unet = depthfm.build_unet(DEPTHFM_HPARAMS)
        sd_vae = depthfm.load_autoencoder(vae) if vae else depthfm.SDAutoencoder(AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2))
        base = depthfm.DepthFM(unet, sd_vae, torch.randn(1, 77, 1024))
        model = depthfm.AmodalDepthFM.from_depthfm(base)
    model = model.to(device).eval()
    data = scene(resolution, device)
    latent = resolution // model.autoencoder.downsample
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}; "
          f"UNet {sum(p.numel() for p in model.unet.parameters()) / 1e6:.0f}M params, {resolution}² images")
    c = model.autoencoder.latent_channels
    x = torch.randn(1, c, latent, latent, device=device)
    cond = torch.randn(1, c + 2, latent, latent, device=device)
    t = torch.full((1,), 0.5, device=device)
    step_flops = unet_flops(model, 1, latent)
    with torch.no_grad():
        fp32 = median_seconds(lambda: model.velocity(x, t, cond), repeats, sync)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = median_seconds(lambda: model.velocity(x, t, cond), repeats, sync)
            encode = median_seconds(lambda: model.encode_image(data["image"]), repeats, sync)
            decode = median_seconds(lambda: model.decode_depth(x), repeats, sync)
    print(f"{'part':<22}{'ms':>9}{'TFLOP':>8}{'TFLOP/s':>9}")
    print(f"{'UNet step fp32 (base)':<22}{1e3 * fp32:>9.1f}{step_flops / 1e12:>8.2f}{step_flops / fp32 / 1e12:>9.1f}")
    print(f"{'UNet step bf16':<22}{1e3 * bf16:>9.1f}{step_flops / 1e12:>8.2f}{step_flops / bf16 / 1e12:>9.1f}")
    print(f"{'VAE encode bf16':<22}{1e3 * encode:>9.1f}")
    print(f"{'VAE decode bf16':<22}{1e3 * decode:>9.1f}")
    print(f"{'samples':>8}{'steps':>6}{'ms/call':>10}{'TFLOP/step':>12}")
    for n in samples_list:
        flops = step_flops * n
        for steps in steps_list:
            def call():
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    model.sample(data["image"], amodal_mask=data["amodal_mask"], observed_depth=data["observed_depth"],
                                 n=n, steps=steps, visible_mask=data["visible_mask"])
            print(f"{n:>8}{steps:>6}{1e3 * median_seconds(call, repeats, sync):>10.1f}{flops / 1e12:>12.2f}")


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
