"""Parity and speed of this repository's models against the official code, on your checkouts.

Notebooks 03 and 04 say that our models compute what the official code computes, and how
fast. This script re-measures those figures. It takes the folders of your own clones of the
official repositories (nothing is downloaded, nothing of theirs is copied here), imports
their model code from there, builds each official network with random weights, loads the
same weights into ours through our official-layout loaders, feeds both the same random
input and prints two tables: the largest output difference, and median times.

=============  ========================================  ====================================
option         clone of                                  what is compared
=============  ========================================  ====================================
``--dav2``     DepthAnything/Depth-Anything-V2            ``DepthAnythingV2`` (its
                                                         ``depth_anything_v2/dpt.py``) vs our
                                                         :class:`amodal.DepthAnythingV2`,
                                                         loaded from its ``.pth`` layout
``--official`` zhyever/Amodal-Depth-Anything              its guided ``DepthAnythingV2``
                                                         (``src/models/amodalsynthdrive/
                                                         depth_anything_v2/dpt.py``, guide type
                                                         ``mask+observation``) vs
                                                         :class:`amodal.AmodalDAV2`, loaded from
                                                         the released ``encoder.*`` layout
``--depthfm``  CompVis/depth-fm                          one call of its ``UNetModel``
                                                         (``depthfm/unet/openaimodel.py``) vs our
                                                         diffusers UNet, loaded by
                                                         ``DepthFM.from_checkpoint`` from a file
                                                         in the ``depthfm-v1.ckpt`` format
``--pix2gestalt`` cvlab-columbia/pix2gestalt             one call of its ``UNetModel``
                                                         (``pix2gestalt/ldm/modules/
                                                         diffusionmodules/openaimodel.py``) vs our
                                                         diffusers UNet loaded from its LDM names,
                                                         and a guided run of its ``DDIMSampler``
                                                         (guidance 1.5, η = 1, the same seed) vs
                                                         ``Pix2Gestalt.sample_latents``
=============  ========================================  ====================================

Every parameter of the official network is perturbed with noise (std 0.02) after its own
initialisation, so that layers it starts at zero (DepthFM's output convolutions, say) cannot
hide a difference. Ours runs in exact mode (the official arithmetic) and in its default
fast mode. Without xformers the official DepthFM attention rescales its self-attention
logits (``rescale_attention=True``, its default then); with xformers it uses the standard
``1/√d`` scale, as ours does. Both official variants are measured when xformers is absent.

Times: ``--repeats`` calls of each contender after one warm-up, batch 1, on the CPU with
the threads given (``--threads``), the contenders called in turns so that other work on a
shared machine slows them alike; the median and the best are printed, and the ratio of
medians. The header names the CPU, the torch version and the
commit of each checkout: quote them with any figure.

    python scripts/compare_official.py --dav2 ~/src/Depth-Anything-V2 \\
        --official ~/src/Amodal-Depth-Anything --depthfm ~/src/depth-fm --threads 2

The official modules need their repositories' requirements (OpenCV for the two DAV2
ones, einops for DepthFM, einops, OpenCV, matplotlib and carvekit for pix2gestalt, whose
``ldm/util.py`` imports them); a missing one is named. pix2gestalt's ``DDIMSampler`` moves
its buffers to CUDA whatever the device; the script keeps them on the CPU, where the
comparison runs. Its sampler draws from torch's global generator, ours from a seeded one:
the same seed gives both the same noise on the CPU. The importing of the official modules and
the building of the official DAV2 networks live in ``scripts/official_code.py``, shared with
``scripts/gpu_check.py`` (the same comparison with the released weights, on a GPU).
"""
from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
from contextlib import contextmanager, redirect_stdout
from functools import partial
from pathlib import Path

import numpy as np
import torch

from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2
from amodal.models.autoencoders import build_vae
from amodal.models.clip_vision import CLIPVisionTower
from amodal.models.ldm_convert import load_ldm_unet
from amodal.models.pix2gestalt import PIX2GESTALT_UNET, TINY_CONFIG, Pix2Gestalt
from amodal.utils.paths import checkout_module

PIX2GESTALT_SEED = 7

# DepthFM's ldm_hparams as stored in depthfm-v1.ckpt (SD-2 UNet, 8 → 4 channels)
DEPTHFM_LDM_HPARAMS = {
    "image_size": 32, "in_channels": 8, "out_channels": 4, "model_channels": 320,
    "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
    "num_heads": 8, "use_spatial_transformer": True, "use_linear_in_transformer": True,
    "transformer_depth": 1, "context_dim": 1024, "legacy": False,
}

# benchmarks/timing.py: taking turns; scripts/official_code.py: importing and building the official code
timing = checkout_module("benchmarks/timing.py")
official_code = checkout_module("scripts/official_code.py")
EXPECTED, OfficialCodeError, NOISE_STD = official_code.EXPECTED, official_code.OfficialCodeError, official_code.NOISE_STD
max_gap, perturb = official_code.max_gap, official_code.perturb


# ------------------------------------------------------------------------ measuring


def time_in_turns(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """name → (median ms, best ms) of ``repeats`` calls, the functions called in turns
    (``timing.interleaved_times``) so that other work on the machine slows all alike."""
    with torch.no_grad():
        times = timing.interleaved_times(fns, repeats)
    return {name: (1e3 * statistics.median(t), 1e3 * min(t)) for name, t in times.items()}


def compare_dav2(module, encoder: str, resolution: int, repeats: int) -> dict:
    """Official ``DepthAnythingV2`` vs ours on one random image; rows for both tables."""
    official = perturb(official_code.official_dav2(module, encoder), 0)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"depth_anything_v2_{encoder}.pth"
        torch.save(official.state_dict(), path)
        ours = {mode: DepthAnythingV2.from_pretrained(path, exact=mode == "exact") for mode in ("exact", "fast")}
    image = torch.rand(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(1))
    normalised, = official_code.official_inputs(image)  # the official forward takes normalised input
    return _measure(f"DAV2 ViT-{encoder[-1].upper()}", f"{resolution}²", lambda: official(normalised)[:, None],
                    ours, (image,), repeats)


def amodal_pair(module, encoder: str, modes=("exact", "fast")):
    """The official guided network with random weights (:func:`perturb`), and ours loaded with
    the same weights through the released layout, one per mode (``"exact"``, ``"fast"``).

    Returns:
        ``(official, {mode: ours})``; the official network takes the ImageNet-normalised image
        and ``cat[2·M_a − 1, 2·D_o − 1]``, as its ``AmodalDAv2`` wrapper hands them.
    """
    official = perturb(official_code.official_amodal_dav2(module, encoder), 0)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.pth"
        # the released model.safetensors names: AmodalDAv2 holds this network as .encoder
        torch.save({f"encoder.{k}": v for k, v in official.state_dict().items()}, path)
        ours = {mode: AmodalDAV2.from_pretrained(path, exact=mode == "exact") for mode in modes}
    return official, ours


def compare_amodal(module, encoder: str, resolution: int, repeats: int) -> dict:
    """The official guided network (as its ``AmodalDAv2`` wraps it) vs our ``AmodalDAV2``."""
    official, ours = amodal_pair(module, encoder)
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, resolution, resolution, generator=generator)
    amodal_mask = torch.zeros(1, 1, resolution, resolution)
    amodal_mask[..., resolution // 4: 3 * resolution // 4, resolution // 3:] = 1
    observed_depth = torch.rand(1, 1, resolution, resolution, generator=generator)
    normalised, guidance = official_code.official_inputs(image, amodal_mask, observed_depth)
    return _measure(f"Amodal-DAV2 ViT-{encoder[-1].upper()}", f"{resolution}²", lambda: official(normalised, guidance),
                    ours, (image, amodal_mask, observed_depth), repeats)


def _measure(name: str, size: str, official_fn, ours: dict, inputs, repeats: int) -> dict:
    """Parity of ``ours`` (mode → model) against ``official_fn()``, and all of them timed in turns."""
    with torch.no_grad():
        reference = official_fn()
        parity = [(f"ours {mode}", max_gap(model(*inputs), reference), reference.abs().max().item())
                  for mode, model in ours.items()]
    fns = {"official": official_fn, **{f"ours {mode}": partial(model, *inputs) for mode, model in ours.items()}}
    return {"model": name, "input": size, "parity": parity, "times": time_in_turns(fns, repeats)}


def _rescaling_attention(unet) -> list[torch.nn.Module]:
    """The official attention modules that take ``rescale_attention`` (its non-xformers path)."""
    return [m for m in unet.modules() if "rescale_attention" in inspect.signature(type(m).forward).parameters]


def compare_depthfm(module, size: str, latent: int, repeats: int) -> dict:
    """One call of the official ``UNetModel`` vs ours, loaded from a ``depthfm-v1.ckpt``-format file."""
    from diffusers import AutoencoderKL

    from amodal import DepthFM
    from amodal.models.depthfm import tiny_ldm_hparams

    hparams = dict(DEPTHFM_LDM_HPARAMS if size == "full" else tiny_ldm_hparams())
    official = perturb(module.UNetModel(**hparams), 0)
    generator = torch.Generator().manual_seed(1)
    embedding = torch.randn(1, 77 if size == "full" else 4, hparams["context_dim"], generator=generator)
    # a one-level VAE: from_checkpoint needs an autoencoder, the UNet comparison does not use it
    vae = AutoencoderKL(block_out_channels=(32,), down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), latent_channels=4, layers_per_block=1)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "depthfm-v1.ckpt"
        torch.save({"noising_step": 400, "empty_text_embedding": embedding, "ldm_hparams": hparams,
                    "state_dict": official.state_dict()}, path)
        ours = DepthFM.from_checkpoint(path, vae=vae).eval()
    x = torch.randn(1, 4, latent, latent, generator=generator)
    condition = torch.randn(1, 4, latent, latent, generator=generator)
    t = torch.full((1,), 0.37)

    def official_fn():
        return official(x=x, t=t, context=condition, context_ca=embedding)

    def standard():  # its own switch, rescale_attention=False: the 1/√d scale that xformers computes
        with _standard_attention(rescaling):
            return official_fn()

    rescaling = _rescaling_attention(official)
    with torch.no_grad():
        ours_out = ours.velocity(x, t, condition)
        rows = [("official as shipped, no xformers (rescaled)", official_fn())] if rescaling else []
        rows.append(("official, standard attention", standard()))
    fns = {"ours": partial(ours.velocity, x, t, condition), "official standard": standard}
    if rescaling:
        fns["official as shipped"] = official_fn
    return {"model": f"DepthFM UNet ({size})", "input": f"{latent}² latent",
            "parity": [(label, max_gap(ours_out, out), out.abs().max().item()) for label, out in rows],
            "times": time_in_turns(fns, repeats)}


@contextmanager
def _standard_attention(modules: list[torch.nn.Module]):
    """Run the official attention ``modules`` with ``rescale_attention=False`` for a while."""
    for module in modules:
        module.forward = partial(type(module).forward, module, rescale_attention=False)
    try:
        yield
    finally:
        for module in modules:
            del module.forward  # back to the class's method


class _LatentDiffusionStandIn:
    """What pix2gestalt's ``DDIMSampler`` reads from its ``LatentDiffusion``: the schedule
    buffers ``register_schedule`` makes (its ``make_beta_schedule``, float64 maths stored as
    float32) and ``apply_model`` with ``hybrid`` conditioning (``DiffusionWrapper``: the
    ``c_concat`` list joined to ``x`` on channels, the ``c_crossattn`` list as context)."""

    def __init__(self, unet, util_module, timesteps: int = 1000):
        betas = util_module.make_beta_schedule("linear", timesteps, linear_start=0.00085, linear_end=0.012)
        alphas_cumprod = np.cumprod(1.0 - betas, axis=0)
        self.unet, self.num_timesteps, self.device = unet, timesteps, torch.device("cpu")
        self.betas = torch.tensor(betas, dtype=torch.float32)
        self.alphas_cumprod = torch.tensor(alphas_cumprod, dtype=torch.float32)
        self.alphas_cumprod_prev = torch.tensor(np.append(1.0, alphas_cumprod[:-1]), dtype=torch.float32)

    def apply_model(self, x, t, cond):
        return self.unet(torch.cat([x] + cond["c_concat"], 1), t, context=torch.cat(cond["c_crossattn"], 1))


def compare_pix2gestalt(modules, size: str, latent: int, steps: int, repeats: int) -> list[dict]:
    """Its ``UNetModel`` vs ours loaded from its LDM names; its guided ``DDIMSampler`` run vs ours."""
    openaimodel, util_module, ddim = modules
    hparams = {**(PIX2GESTALT_UNET if size == "full" else TINY_CONFIG.unet), "use_checkpoint": False}
    official = perturb(openaimodel.UNetModel(**hparams), 0)
    unet = load_ldm_unet(official.state_dict(), hparams, source="the official UNetModel's state_dict").eval()
    context_dim = hparams["context_dim"]
    # the VAE and CLIP are not compared here; tiny ones complete the model
    clip = CLIPVisionTower(width=64, layers=1, patch_size=4, image_size=16, output_dim=context_dim)
    ours = Pix2Gestalt(unet, build_vae(TINY_CONFIG.vae), clip, torch.nn.Linear(context_dim, context_dim))
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, latent, latent, generator=generator)
    concat = torch.randn(1, 8, latent, latent, generator=generator)
    context = torch.randn(1, 1, context_dim, generator=generator)
    t = torch.tensor([501])

    sampler = ddim.DDIMSampler(_LatentDiffusionStandIn(official, util_module))
    sampler.register_buffer = partial(setattr, sampler)  # its own moves every buffer to CUDA
    cond = {"c_concat": [concat], "c_crossattn": [context]}
    uncond = {"c_concat": [torch.zeros_like(concat)], "c_crossattn": [torch.zeros_like(context)]}

    def official_run():
        torch.manual_seed(PIX2GESTALT_SEED)  # x_T and every step's noise come from the global generator
        with redirect_stdout(None):  # it prints the shape and the step count on every run
            return sampler.sample(S=steps, conditioning=cond, batch_size=1, shape=[4, latent, latent],
                                  verbose=False, unconditional_guidance_scale=1.5, unconditional_conditioning=uncond,
                                  eta=1.0)[0]

    def ours_run():
        return ours.sample_latents(concat, context, steps=steps, guidance_scale=1.5, eta=1.0,
                                   generator=torch.Generator().manual_seed(PIX2GESTALT_SEED))

    calls = {"official": lambda: official(torch.cat([x, concat], 1), t, context=context),
             "ours": lambda: ours.predict_noise(x, t, concat, context)}
    runs = {"official": official_run, "ours": ours_run}
    results = []
    for name, fns in (("pix2gestalt UNet", calls), (f"pix2gestalt DDIM ×{steps}", runs)):
        with torch.no_grad():
            reference, mine = fns["official"](), fns["ours"]()
        results.append({"model": name, "input": f"{latent}² {size}",
                        "parity": [("ours", max_gap(mine, reference), reference.abs().max().item())],
                        "times": time_in_turns(fns, repeats)})
    return results


# --------------------------------------------------------------------------- output


def print_tables(results: list[dict], header: list[str]) -> None:
    """The parity table, then the speed table (official time / ours: > 1 means ours is faster)."""
    for line in header:
        print(line)
    print(f"\n{'model':<22}{'input':<12}{'against':<46}{'max |ours − official|':>22}{'max |official|':>16}")
    for result in results:
        for against, gap, scale in result["parity"]:
            print(f"{result['model']:<22}{result['input']:<12}{against:<46}{gap:>22.2e}{scale:>16.3g}")
    print(f"\n{'model':<22}{'input':<12}{'run':<28}{'median ms':>10}{'best ms':>10}{'official ÷ this':>17}")
    for result in results:
        times = result["times"]
        baseline = times.get("official", times.get("official as shipped", times.get("official standard")))[0]
        for run, (median, best) in times.items():
            print(f"{result['model']:<22}{result['input']:<12}{run:<28}{median:>10.1f}{best:>10.1f}"
                  f"{baseline / median:>16.2f}x")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dav2", type=Path, help="clone of DepthAnything/Depth-Anything-V2")
    parser.add_argument("--official", type=Path, help="clone of zhyever/Amodal-Depth-Anything")
    parser.add_argument("--depthfm", type=Path, help="clone of CompVis/depth-fm")
    parser.add_argument("--pix2gestalt", type=Path, help="clone of cvlab-columbia/pix2gestalt")
    parser.add_argument("--encoder", default="vits", choices=["vits", "vitb", "vitl", "vitg"])
    parser.add_argument("--resolution", type=int, default=518, help="image side for the DAV2 models")
    parser.add_argument("--depthfm-size", default="tiny", choices=["tiny", "full"],
                        help="tiny: the quick profile's UNet shape; full: DepthFM's (865M parameters)")
    parser.add_argument("--latent", type=int, default=None, help="latent side for DepthFM (default 8 tiny, 64 full)")
    parser.add_argument("--pix2gestalt-size", default="tiny", choices=["tiny", "full"],
                        help="tiny: the tests' UNet shape; full: the released one (860M parameters)")
    parser.add_argument("--pix2gestalt-latent", type=int, default=None,
                        help="latent side for pix2gestalt (default 8 tiny, 32 full: a 256² image)")
    parser.add_argument("--ddim-steps", type=int, default=4, help="DDIM steps of the pix2gestalt run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if not (args.dav2 or args.official or args.depthfm or args.pix2gestalt):
        parser.error("give at least one of --dav2, --official, --depthfm, --pix2gestalt (folders of your clones)")
    if args.resolution % 14:
        parser.error("--resolution must be a multiple of 14")
    args.latent = args.latent or (64 if args.depthfm_size == "full" else 8)
    args.pix2gestalt_latent = args.pix2gestalt_latent or (32 if args.pix2gestalt_size == "full" else 8)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    header = [f"CPU: {timing.cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
              f"random weights (+N(0, {NOISE_STD}²) on every parameter), float32, batch 1, "
              f"{args.repeats} timed calls of each, in turns"]
    jobs = []  # every import first, so that a wrong folder fails before anything is timed
    try:
        if args.dav2:
            module = official_code.import_dav2_dpt("dav2", args.dav2)
            jobs.append(partial(compare_dav2, module, args.encoder, args.resolution, args.repeats))
        if args.official:
            module = official_code.import_dav2_dpt("official", args.official)
            jobs.append(partial(compare_amodal, module, args.encoder, args.resolution, args.repeats))
        if args.depthfm:
            module = official_code.import_depthfm_unet(args.depthfm)
            jobs.append(partial(compare_depthfm, module, args.depthfm_size, args.latent, args.repeats))
        if args.pix2gestalt:
            modules = official_code.import_pix2gestalt(args.pix2gestalt)
            jobs.append(partial(compare_pix2gestalt, modules, args.pix2gestalt_size, args.pix2gestalt_latent,
                                args.ddim_steps, args.repeats))
    except OfficialCodeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for option in EXPECTED:
        if getattr(args, option):
            header.append(f"--{option}: {EXPECTED[option][1]} at {official_code.commit_of(getattr(args, option))}")
    try:
        results = []
        for job in jobs:  # the pix2gestalt job gives two rows, the others one
            result = job()
            results += result if isinstance(result, list) else [result]
    except ImportError as error:  # a requirement the official constructors import lazily
        print(f"error: building an official model failed ({error}); install that repository's requirements",
              file=sys.stderr)
        return 2
    print_tables(results, header)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
