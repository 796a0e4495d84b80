r"""pix2gestalt on diffusers: the whole object painted from its visible part (Ozguroglu et al., CVPR 2024).

The official in-the-wild demo of Amodal Depth Anything (its ``app.py``) asks pix2gestalt
for the whole object behind an occluder, then for depth of that painting. pix2gestalt is
a latent diffusion model fine-tuned from an image-conditioned Stable Diffusion; its
config ``sd-finetune-pix2gestalt-c_concat-256.yaml`` and ``ldm/models/diffusion/ddpm.py``
fix everything below.

**Network.** An SD-1 UNet (``openaimodel.UNetModel``: ``in_channels`` 12, ``out_channels`` 4,
``model_channels`` 320, ``channel_mult`` 1, 2, 4, 4, 2 res blocks, attention at 4, 2, 1,
8 heads, ``context_dim`` 768, 1×1-convolution transformer projections) predicting the
noise ``ε``; SD's VAE (``ch`` 128, ``ch_mult`` 1, 2, 4, 4, ``z_channels`` 4; latents of
the target scaled by 0.18215); CLIP ViT-L/14's image tower
(:mod:`amodal.models.clip_vision`); ``cc_projection``, a ``Linear(768, 768)``.

**Conditioning** (``conditioning_key: hybrid``; ``inference.py``'s ``sample_model``). Both
inputs are at 256² in [-1, 1]: the occluded image, and the visible mask given as a
3-channel image (0 → −1, 1 → +1).

- ``c_concat``, concatenated to ``z_t`` on channels (4 + 4 + 4 = 12): the VAE posterior's
  *mode* of the image, then of the mask — **unscaled** (``encode_first_stage(x).mode()``,
  without the 0.18215 that the target latents get).
- ``c_crossattn``, the cross-attention context ``(B, 1, 768)``:
  ``cc_projection(CLIP(image))``.
- The unconditional branch of classifier-free guidance: zeros for both (the context
  zeros *after* the projection, not ``cc_projection(0)``). Training dropped the prompt as
  ``cc_projection(0)`` (its bias) and the concat as zeros, 5 % each and 5 % both; the
  inference code's zeros are what this port computes.

**Sampling** (:mod:`amodal.models.ddim`): DDIM on the linear schedule (1000 steps, β
0.00085 → 0.012) with guidance; the latent is decoded by the VAE and mapped to [0, 1] by
``clamp((x + 1)/2)``. The Amodal Depth Anything demo calls ``run_pix2gestalt`` with 100
steps, guidance 1.5 and one sample, leaving ``ddim_eta`` at its default 1.0
(:data:`DEMO_SAMPLING`); its ``src/scripts/pix2gestalt_inpainting.py``, which paints the
evaluation set, uses 200 steps and guidance 1 (no unconditional call); pix2gestalt's own
demo offers 200 steps, guidance 2 and 4 samples.
The official sampler skips the step at the highest timestep (its ``t_start=-1``), so its
"100 steps" are 99 UNet calls from t = 981; :meth:`Pix2Gestalt.complete` does the same
unless told ``official_steps=False``.

**Weights.** The released ``epoch=000005.ckpt`` is a PyTorch Lightning checkpoint of the
whole ``LatentDiffusion`` module (:func:`~amodal.models.ldm_convert.read_lightning_state_dict`).
The official inference samples inside ``ema_scope()``, so the UNet runs on its moving
averages (``model_ema.*``), taken here too when the file holds them. The CLIP text tower's
leftovers (``token_embedding``, ``ln_final``, …) are not used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from amodal.models.autoencoders import SD_LATENT_SCALE, SD_VAE_DDCONFIG, build_vae, vae_from_ldm
from amodal.models.checks import check_image
from amodal.models.clip_vision import CLIPVisionTower
from amodal.models.ddim import cumulative_alphas, ddim_sample, ddim_schedule, guide, linear_betas
from amodal.models.ldm_convert import build_unet, load_ldm_unet, prefixed, read_lightning_state_dict, unet_state

# ``unet_config.params`` of sd-finetune-pix2gestalt-c_concat-256.yaml (``use_checkpoint`` only saves memory).
PIX2GESTALT_UNET = {
    "image_size": 32, "in_channels": 12, "out_channels": 4, "model_channels": 320,
    "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
    "num_heads": 8, "use_spatial_transformer": True, "transformer_depth": 1, "context_dim": 768,
    "use_checkpoint": True, "legacy": False,
}
IMAGE_SIZE = 256  # pix2gestalt was trained and is run at 256²
CLIP_PREFIX, VAE_PREFIX, PROJECTION_PREFIX = "cond_stage_model.model.visual.", "first_stage_model.", "cc_projection."
# What the Amodal Depth Anything demo runs (its app.py → pix2gestalt's run_pix2gestalt).
DEMO_SAMPLING = {"steps": 100, "guidance_scale": 1.5, "eta": 1.0}


@dataclass(frozen=True)
class Pix2GestaltConfig:
    """What the yaml fixes beside the weights: the UNet's ``ldm_hparams``, the VAE's
    ``ddconfig``, the noise schedule and the latent scale."""

    unet: dict[str, Any] = field(default_factory=lambda: dict(PIX2GESTALT_UNET))
    vae: dict[str, Any] = field(default_factory=lambda: dict(SD_VAE_DDCONFIG))
    timesteps: int = 1000
    linear_start: float = 0.00085
    linear_end: float = 0.012
    scale_factor: float = SD_LATENT_SCALE


@dataclass
class Completion:
    """``n`` paintings of the whole object per input image.

    Attributes:
        image: ``(n, B, 3, H, W)`` in [0, 1].
        latents: ``(n, B, 4, H/8, W/8)`` the sampled latents (scaled, as the UNet sees them).
    """

    image: torch.Tensor
    latents: torch.Tensor


class Pix2Gestalt(nn.Module):
    """pix2gestalt: occluded image + visible mask → the whole object, by guided DDIM.

    Args:
        unet: ``UNet2DConditionModel`` with ``3·C`` input and ``C`` output channels.
        vae: diffusers ``AutoencoderKL`` with ``C`` latent channels.
        clip: the CLIP image tower.
        cc_projection: ``Linear(clip.output_dim, unet cross_attention_dim)``.
        config: the schedule and latent scale (the network sizes are the modules').
    """

    def __init__(self, unet, vae, clip: CLIPVisionTower, cc_projection: nn.Linear,
                 config: Pix2GestaltConfig | None = None):
        super().__init__()
        config = config or Pix2GestaltConfig()
        channels = vae.config.latent_channels
        if (unet.config.in_channels, unet.config.out_channels) != (3 * channels, channels):
            raise ValueError(f"pix2gestalt needs a UNet with {3 * channels} → {channels} channels, "
                             f"got {unet.config.in_channels} → {unet.config.out_channels}")
        wanted = (clip.output_dim, unet.config.cross_attention_dim)
        if (cc_projection.in_features, cc_projection.out_features) != wanted:
            raise ValueError(f"cc_projection must map {clip.output_dim} → {unet.config.cross_attention_dim}, "
                             f"got {cc_projection.in_features} → {cc_projection.out_features}")
        self.unet, self.vae, self.clip, self.cc_projection = unet.eval(), vae.eval(), clip.eval(), cc_projection
        self.config = config
        betas = linear_betas(config.timesteps, config.linear_start, config.linear_end)
        # float64 on the CPU, not a buffer: ``.to(dtype)`` of the model must not round the schedule
        self.alphas_cumprod = cumulative_alphas(betas)

    # ---- loading
    @classmethod
    def from_checkpoint(cls, path: str | Path, config: Pix2GestaltConfig | None = None,
                        ema: bool | None = None) -> "Pix2Gestalt":
        """Load the released ``epoch=000005.ckpt`` (or a file in its layout); the one place a file is read.

        Args:
            path: the Lightning checkpoint.
            config: the yaml's settings; the released model's when not given.
            ema: see :func:`~amodal.models.ldm_convert.unet_state` (default: the moving
                averages where present, as the official inference samples).

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a pix2gestalt checkpoint; weights that do not fit ``config`` (named).
        """
        state = read_lightning_state_dict(path, model="pix2gestalt")
        return cls.from_state_dict(state, config, ema, source=str(path))

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], config: Pix2GestaltConfig | None = None,
                        ema: bool | None = None, source: str = "state_dict") -> "Pix2Gestalt":
        """Build every part from a ``LatentDiffusion`` ``state_dict`` (official names and prefixes)."""
        config = config or Pix2GestaltConfig()
        for prefix in (VAE_PREFIX, CLIP_PREFIX, PROJECTION_PREFIX):
            if not any(k.startswith(prefix) for k in state):
                raise ValueError(f"{source}: not a pix2gestalt checkpoint; no key starts with {prefix!r}")
        weights, _ = unet_state(state, ema, source)
        unet = load_ldm_unet(weights, config.unet, source)
        vae = vae_from_ldm(prefixed(state, VAE_PREFIX), config.vae, source=source)
        clip = CLIPVisionTower.from_state_dict(prefixed(state, CLIP_PREFIX), source)
        projection = prefixed(state, PROJECTION_PREFIX)
        if projection.get("weight") is None or projection["weight"].ndim != 2:
            raise ValueError(f"{source}: no 2-D {PROJECTION_PREFIX}weight")
        cc_projection = nn.Linear(projection["weight"].shape[1], projection["weight"].shape[0])
        try:
            cc_projection.load_state_dict(projection, strict=True)
        except RuntimeError as error:
            raise ValueError(f"{source}: cc_projection: {error}") from error
        model = cls(unet, vae, clip, cc_projection.float(), config)
        if "alphas_cumprod" in state:  # LDM saves its schedule: a file of another schedule is refused
            saved = state["alphas_cumprod"].double()
            if saved.shape != model.alphas_cumprod.shape or (saved - model.alphas_cumprod).abs().max() > 1e-6:
                raise ValueError(f"{source}: its alphas_cumprod is not the schedule of the config "
                                 f"({config.timesteps} steps, β {config.linear_start} → {config.linear_end})")
        return model

    # ---- the parts of one step
    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (VAE × UNet downsampling): 64 for the released model."""
        vae_down = 2 ** (len(self.vae.config.block_out_channels) - 1)
        return vae_down * 2 ** (len(self.unet.config.block_out_channels) - 1)

    def condition(self, image: torch.Tensor, visible_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The conditioning of the occluded ``image`` ``(B, 3, H, W)`` in [0, 1] and its
        ``visible_mask`` ``(B, 1, H, W)`` in [0, 1].

        Returns:
            ``(concat, context)``: ``(B, 2C, H/8, W/8)`` unscaled posterior modes of the image
            and of the mask as a 3-channel image, both in [-1, 1]; ``(B, 1, D)`` the projected
            CLIP embedding of the image.
        """
        image = image.float() * 2 - 1
        mask = visible_mask.float().expand(-1, 3, -1, -1) * 2 - 1
        modes = [self.vae.encode(x.to(self.vae.dtype)).latent_dist.mode() for x in (image, mask)]
        context = self.cc_projection(self.clip.embed(image).to(self.cc_projection.weight.dtype))[:, None]
        return torch.cat(modes, 1).float(), context.float()

    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, concat: torch.Tensor,
                      context: torch.Tensor) -> torch.Tensor:
        """The UNet's ``ε`` for latents ``x`` ``(B, C, h, w)`` at timesteps ``t`` ``(B,)``."""
        dtype = self.unet.dtype
        return self.unet(torch.cat([x, concat], 1).to(dtype), t, encoder_hidden_states=context.to(dtype)).sample.float()

    def guided_noise(self, x: torch.Tensor, t: torch.Tensor, concat: torch.Tensor, context: torch.Tensor,
                     guidance_scale: float) -> torch.Tensor:
        """Classifier-free guided ``ε``: one UNet call on ``[unconditional; conditional]``
        (zeros for both conditionings), or the conditional call alone when the scale is 1."""
        if guidance_scale == 1:
            return self.predict_noise(x, t, concat, context)
        uncond, cond = self.predict_noise(torch.cat([x, x]), torch.cat([t, t]),
                                          torch.cat([torch.zeros_like(concat), concat]),
                                          torch.cat([torch.zeros_like(context), context])).chunk(2)
        return guide(uncond, cond, guidance_scale)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B, C, h, w)`` → ``(B, 3, 8h, 8w)`` image in [0, 1]."""
        decoded = self.vae.decode((latents / self.config.scale_factor).to(self.vae.dtype)).sample.float()
        return ((decoded + 1) / 2).clamp(0, 1)

    # ---- the whole object
    @torch.no_grad()
    def complete(self, image: torch.Tensor, visible_mask: torch.Tensor, *, steps: int = DEMO_SAMPLING["steps"],
                 guidance_scale: float = DEMO_SAMPLING["guidance_scale"], eta: float = DEMO_SAMPLING["eta"],
                 n: int = 1, generator: torch.Generator | None = None, official_steps: bool = True) -> Completion:
        """Paint the whole object ``n`` times for each occluded image.

        Args:
            image: ``(B, 3, H, W)`` in [0, 1], sides multiples of :attr:`size_multiple`
                (256² is what the model was trained on).
            visible_mask: ``(B, 1, H, W)`` in [0, 1], the object's visible pixels.
            steps, guidance_scale, eta: DDIM steps, guidance scale and noise level (the
                demo's 100, 1.5 and 1.0 by default).
            n: paintings per image, from independent noise.
            generator: for repeatable paintings (any device).
            official_steps: skip the step at the highest timestep as the official sampler
                does (``steps − 1`` UNet calls); ``False`` runs all ``steps``.

        Returns:
            :class:`Completion` with ``(n, B, 3, H, W)`` images in [0, 1].

        Raises:
            ValueError: shapes, sizes, values outside [0, 1], NaN, or an empty visible mask.
        """
        self._check(image, visible_mask)
        if n < 1:
            raise ValueError(f"n must be ≥ 1, got {n}")
        concat, context = self.condition(image, visible_mask)
        batch = image.shape[0]
        # sample-major, (n·B, ...), as the official code tiles its conditioning for n_samples
        latents = self.sample_latents(concat.repeat(n, 1, 1, 1), context.repeat(n, 1, 1), steps=steps,
                                      guidance_scale=guidance_scale, eta=eta, generator=generator,
                                      official_steps=official_steps)
        painted = self.decode(latents)
        return Completion(painted.unflatten(0, (n, batch)), latents.unflatten(0, (n, batch)))

    @torch.no_grad()
    def sample_latents(self, concat: torch.Tensor, context: torch.Tensor, *, steps: int, guidance_scale: float,
                       eta: float, generator: torch.Generator | None = None,
                       official_steps: bool = True) -> torch.Tensor:
        """Guided DDIM from ``x_T ~ N(0, I)`` given the conditioning of :meth:`condition`.

        Args:
            concat: ``(B, 2C, h, w)``; context: ``(B, 1, D)``.
            steps, guidance_scale, eta, official_steps: see :meth:`complete`.
            generator: draws ``x_T`` and one noise per step, in the official sampler's order.

        Returns:
            ``(B, C, h, w)`` scaled latents.
        """
        schedule = ddim_schedule(self.alphas_cumprod, steps, eta, skip_first=official_steps)
        shape = (concat.shape[0], self.vae.config.latent_channels, *concat.shape[2:])
        return ddim_sample(lambda x, t: self.guided_noise(x, t, concat, context, guidance_scale), shape, schedule,
                           concat, generator)

    def _check(self, image: torch.Tensor, visible_mask: torch.Tensor) -> None:
        check_image(image)
        batch, _, height, width = image.shape
        if not isinstance(visible_mask, torch.Tensor) or tuple(visible_mask.shape) != (batch, 1, height, width):
            shape = tuple(visible_mask.shape) if isinstance(visible_mask, torch.Tensor) else type(visible_mask).__name__
            raise ValueError(f"visible_mask must have shape ({batch}, 1, {height}, {width}) like image, got {shape}")
        m = self.size_multiple
        if height % m or width % m:
            raise ValueError(f"image sides must be multiples of {m} (pix2gestalt runs at {IMAGE_SIZE}²), "
                             f"got {height}×{width}")
        stats = []  # one read-back for every value check
        for x in (image, visible_mask):
            x = x.detach().float()
            finite = torch.isfinite(x)
            stats.append(torch.stack([(~finite).sum().float(), torch.where(finite, x, 0).amin(),
                                      torch.where(finite, x, 0).amax()]))
        empty = ((visible_mask.detach().flatten(1) > 0).sum(1) == 0).sum().float().to(stats[0].device)
        (bad_i, low_i, high_i), (bad_m, low_m, high_m), (n_empty, _, _) = \
            torch.stack([*stats, empty.expand(3)]).tolist()
        for name, bad, low, high in (("image", bad_i, low_i, high_i), ("visible_mask", bad_m, low_m, high_m)):
            if bad:
                raise ValueError(f"{name} holds NaN or inf ({int(bad)} values)")
            if low < 0 or high > 1:
                raise ValueError(f"{name} must lie in [0, 1], got [{low:.3g}, {high:.3g}]")
        if n_empty:
            raise ValueError(f"visible_mask is empty for {int(n_empty)} of {batch} images: nothing to complete")


# A pix2gestalt small enough for a CPU: every code path of the released one (12 → 4 channel
# UNet with 1×1-conv transformer projections, an LDM VAE, a CLIP tower, the projection).
TINY_CONFIG = Pix2GestaltConfig(
    unet={"image_size": 8, "in_channels": 12, "out_channels": 4, "model_channels": 32,
          "attention_resolutions": [1, 2], "num_res_blocks": 1, "channel_mult": [1, 2, 2], "num_heads": 2,
          "use_spatial_transformer": True, "transformer_depth": 1, "context_dim": 32, "legacy": False},
    vae={"double_z": True, "z_channels": 4, "resolution": 32, "in_channels": 3, "out_ch": 3, "ch": 32,
         "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0},
)
TINY_CLIP = {"width": 128, "layers": 2, "patch_size": 4, "image_size": 16, "output_dim": 48}


def paint_photo(model: Pix2Gestalt, image, visible_mask, steps: int | None = None, seed: int = 0):
    """pix2gestalt on a photo of any size, as the official demo runs it: the photo and ``M_vis``
    area-resized to 256² (``M_vis`` kept where over half a pixel), one painting.

    Args:
        model: a :class:`Pix2Gestalt`.
        image: (H, W, 3) uint8 RGB.
        visible_mask: (H, W) bool.
        steps: DDIM steps (default the demo's 100).
        seed: the sampling noise.

    Returns:
        ``(painting (256, 256, 3) uint8, visible mask at 256² (256, 256) bool)``.

    Raises:
        ValueError: a visible part that vanishes at 256².
    """
    side = IMAGE_SIZE
    small = np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((side, side), Image.BOX))
    small_visible = np.asarray(Image.fromarray(np.asarray(visible_mask, np.uint8) * 255).resize((side, side), Image.BOX)) > 127
    if not small_visible.any():
        raise ValueError("the visible part vanishes at 256²: pix2gestalt cannot see it; crop the photo around the object")
    device = next(model.parameters()).device
    image_t = torch.from_numpy(np.array(small)).permute(2, 0, 1)[None].float().div(255).to(device)
    mask_t = torch.from_numpy(small_visible)[None, None].float().to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    completion = model.complete(image_t, mask_t, generator=generator, **({} if steps is None else {"steps": steps}))
    painting = (completion.image[0, 0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return painting, small_visible


def tiny_pix2gestalt(seed: int = 0) -> Pix2Gestalt:
    """A randomly initialised :data:`TINY_CONFIG` pix2gestalt (inputs: multiples of 8 pixels).

    The caller's random stream is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = build_unet(TINY_CONFIG.unet)
        vae = build_vae(TINY_CONFIG.vae)
        clip = CLIPVisionTower(**TINY_CLIP).eval()
        cc_projection = nn.Linear(TINY_CLIP["output_dim"], TINY_CONFIG.unet["context_dim"])
        return Pix2Gestalt(unet, vae, clip, cc_projection, TINY_CONFIG)

