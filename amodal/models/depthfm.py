r"""DepthFM and Amodal-DepthFM on diffusers (paper §3.3; DepthFM, Gui et al. 2025).

DepthFM is a latent flow-matching model: a Stable-Diffusion-2 UNet predicts the
velocity that carries the latent of an image to the latent of its depth map
(:mod:`amodal.models.flow_matching` holds the maths). Here the UNet is diffusers'
:class:`~diffusers.UNet2DConditionModel` (built from the official checkpoint's
``ldm_hparams`` by :mod:`amodal.models.ldm_convert`) and the autoencoder SD's VAE
(:mod:`amodal.models.autoencoders`: latents ×0.18215, the posterior's mode).

The UNet's input is the channel concatenation ``[x_t, z_img]`` (4 + 4 = 8). Its
cross-attention is fed a stored embedding of the empty text prompt, so it is an
unconditional SD UNet in all but name. Time ``t ∈ [0, 1]`` enters the sinusoidal
embedding directly.

**Amodal-DepthFM** widens the first convolution 8 → 10: the extra channels are the
amodal mask ``M_a`` and the observed depth ``D_o``, both in [0, 1] and
nearest-downsampled to latent size (not encoded by the VAE). Their weights start
at zero, so the widened model first computes exactly what DepthFM computes, and
training only has to learn how to use the guidance. Depth is encoded as
``(1 − D)·2 − 1`` repeated to three channels and decoded back with the channel
mean; after sampling, each map is least-squares aligned to ``D_o`` on the visible
pixels ``M_vis`` (paper: 5.410 → 4.645 RMSE).

Precision. Under ``torch.autocast`` the UNet and the VAE may compute in bf16, but the
latents, the Euler state ``x``, the time ``t`` and every returned map are float32: the
networks' outputs are cast back at once, so the ODE is summed in float32 and the
samples, mean and spread are plain float32 tensors (``.numpy()`` works on them).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from amodal.align import align as least_squares_align
from amodal.align import align_shift
from amodal.models.autoencoders import (
    PixelAutoencoder,
    SDAutoencoder,
    SpaceToDepthAutoencoder,
    autoencoder_from_spec,
    load_autoencoder,
    local_load_options,
)
from amodal.models.checkpoints import read_safetensors
from amodal.models.checks import check_guidance, check_image
from amodal.models.flow_matching import (
    NOISING_STEP,
    draw,
    ensemble_statistics,
    euler_sample,
    flow_matching_loss,
    source_latent,
)
from amodal.models.ldm_convert import build_unet, load_ldm_unet, read_depthfm_checkpoint, tiny_ldm_hparams
from amodal.utils.atomic import atomic_directory
from amodal.utils.hub import HubFiles, resolve

# A save_pretrained folder on the hub: what from_pretrained reads (vae/ when it was saved with one).
HUB_FOLDER = HubFiles(("depthfm.json", "empty_text_embedding.safetensors", "unet/config.json",
                       "unet/diffusion_pytorch_model.safetensors"),
                      optional=("vae/config.json", "vae/diffusion_pytorch_model.safetensors"), folder="")


@dataclass
class DepthSamples:
    """``n`` depth samples and their statistics, all in normalised disparity at input size.

    Attributes:
        samples: ``(n, B, 1, H, W)``.
        mean: ``(B, 1, H, W)`` per-pixel mean of the samples.
        spread: ``(B, 1, H, W)`` per-pixel standard deviation (0 for ``n = 1``).
    """

    samples: torch.Tensor
    mean: torch.Tensor
    spread: torch.Tensor


def _check_map(name: str, x: torch.Tensor, batch: int, size: tuple[int, int]) -> None:
    # Shapes only, for the maps that are not guidance (target, loss mask); the guidance
    # maps are checked, values included, by amodal.models.checks.check_guidance.
    if x.ndim != 4 or x.shape[0] != batch or x.shape[1] != 1 or tuple(x.shape[2:]) != size:
        raise ValueError(f"{name} must have shape ({batch}, 1, {size[0]}, {size[1]}), got {tuple(x.shape)}")


class DepthFM(nn.Module):
    """DepthFM: image → depth by flow matching in the autoencoder's latent space.

    Args:
        unet: ``UNet2DConditionModel`` with ``in_channels = 2·C + extra``.
        autoencoder: :class:`SDAutoencoder` or :class:`PixelAutoencoder`.
        empty_text_embedding: ``(1, T, D)`` cross-attention context.
        noising_step: noise augmentation level of the source (400 in DepthFM).
    """

    extra_channels = 0

    def __init__(self, unet, autoencoder: nn.Module, empty_text_embedding: torch.Tensor,
                 noising_step: int = NOISING_STEP):
        super().__init__()
        expected = 2 * autoencoder.latent_channels + self.extra_channels
        if unet.config.in_channels != expected:
            raise ValueError(f"{type(self).__name__} needs a UNet with {expected} input channels, "
                             f"got {unet.config.in_channels}")
        self.unet = unet
        self.autoencoder = autoencoder
        self.register_buffer("empty_text_embedding", empty_text_embedding.detach().float().clone())
        self.noising_step = noising_step

    # ---- loading and saving
    @classmethod
    def from_checkpoint(cls, path: str | Path, vae=None) -> "DepthFM":
        """Load ``depthfm-v1.ckpt`` (UNet built from its ``ldm_hparams``) and the VAE.

        Args:
            path: the official checkpoint, or a file in its format (a path, or a hub id: see
                :func:`~amodal.models.ldm_convert.read_depthfm_checkpoint`).
            vae: see :func:`load_autoencoder` (a folder, a file, a hub id, a module).

        Raises:
            FileNotFoundError, ValueError: missing file; not a DepthFM checkpoint; weights
                that do not match; a UNet with the wrong number of input channels.
        """
        ckpt = read_depthfm_checkpoint(path)
        unet = load_ldm_unet(ckpt["state_dict"], ckpt["ldm_hparams"], source=str(path))
        autoencoder = load_autoencoder(vae)
        return DepthFM(unet, autoencoder, ckpt["empty_text_embedding"], ckpt["noising_step"])

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``unet/`` (diffusers), ``empty_text_embedding.safetensors``, ``depthfm.json``
        and, for SD's VAE, ``vae/``.

        All of it is written into a temporary sibling folder that then takes the place of
        ``folder`` (:func:`amodal.utils.atomic.atomic_directory`): a save that fails midway leaves
        the previous model whole, never a UNet of one model beside the embedding of another.

        Raises:
            FileExistsError: ``folder`` holds something other than a saved DepthFM (it
                would be replaced whole, so it is left alone).
        """

        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or (any(folder.iterdir())
                                                         and not (folder / "depthfm.json").is_file())):
            raise FileExistsError(f"{folder} exists and is not a saved DepthFM; choose a new or empty folder")
        meta = {"model": type(self).__name__, "noising_step": self.noising_step,
                "autoencoder": self.autoencoder.spec()}
        with atomic_directory(folder) as temporary:
            self.unet.save_pretrained(temporary / "unet")
            save_file({"empty_text_embedding": self.empty_text_embedding.cpu().contiguous()},
                      str(temporary / "empty_text_embedding.safetensors"))
            if isinstance(self.autoencoder, SDAutoencoder):
                self.autoencoder.vae.save_pretrained(temporary / "vae")
            (temporary / "depthfm.json").write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, vae=None):
        """Load what :meth:`save_pretrained` wrote (``vae`` overrides a saved ``vae/``), from a
        folder or a hub id (:data:`HUB_FOLDER`).

        Raises:
            FileNotFoundError: no ``depthfm.json`` in ``folder``; a hub id that cannot be had.
            ValueError: the folder holds the other model class.
        """
        # diffusers takes seconds to import: only the DepthFM and VAE paths pay for it
        from diffusers import UNet2DConditionModel

        folder = resolve(folder, fallback=HUB_FOLDER, what=f"{cls.__name__} folder")
        meta_path = folder / "depthfm.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{folder}: no depthfm.json (not a saved DepthFM folder)")
        meta = json.loads(meta_path.read_text())
        if meta["model"] != cls.__name__:
            raise ValueError(f"{folder} holds a {meta['model']}, not a {cls.__name__}")
        unet = UNet2DConditionModel.from_pretrained(folder / "unet", **local_load_options())
        embedding = read_safetensors(folder / "empty_text_embedding.safetensors")[0]["empty_text_embedding"]
        autoencoder = autoencoder_from_spec(meta["autoencoder"], vae, folder)
        return cls(unet, autoencoder, embedding, meta["noising_step"])

    # ---- latent space
    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (autoencoder × UNet downsampling)."""
        return self.autoencoder.downsample * 2 ** (len(self.unet.config.block_out_channels) - 1)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] → ``(B, C, h, w)`` float32 latent."""
        return self.autoencoder.encode(image * 2 - 1).float()

    def encode_depth(self, depth: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` normalised disparity → float32 latent of ``(1 − D)·2 − 1`` on 3 channels."""
        return self.autoencoder.encode(((1 - depth) * 2 - 1).repeat(1, 3, 1, 1)).float()

    def decode_depth(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent → ``(B, 1, H, W)`` float32 normalised disparity in [0, 1] (channel mean, inverted)."""
        decoded = self.autoencoder.decode(latent).float().mean(1, keepdim=True)
        return ((1 - decoded) / 2).clamp(0, 1)

    def guidance(self, latent_size: tuple[int, int]) -> list[torch.Tensor]:
        """Extra input channels at latent size (none for DepthFM)."""
        return []

    def velocity(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The UNet's velocity for ``x`` ``(B, C, h, w)`` at times ``t`` ``(B,)``, given the
        conditioning channels ``(B, C + extra, h, w)``; float32 even when autocast runs the
        UNet in bf16, so that the Euler state it is added to stays float32."""
        context = self.empty_text_embedding.to(x.dtype).expand(x.shape[0], -1, -1)
        return self.unet(torch.cat([x, condition], 1), t, encoder_hidden_states=context).sample.float()

    def _condition(self, image: torch.Tensor, **guidance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_image(image)
        m = self.size_multiple
        if image.shape[2] % m or image.shape[3] % m:
            raise ValueError(f"image sides must be multiples of {m}, got {tuple(image.shape[2:])}")
        image_latent = self.encode_image(image)
        extra = self.guidance(tuple(image_latent.shape[2:]), **guidance)
        return image_latent, torch.cat([image_latent, *extra], 1)

    # ---- training and sampling
    def training_loss(self, image: torch.Tensor, target_depth: torch.Tensor, *, loss_mask: torch.Tensor | None = None,
                      generator: torch.Generator | None = None, time_grid: int | None = None) -> torch.Tensor:
        """Flow-matching loss for one batch (VAE frozen, UNet trained).

        Args:
            image: ``(B, 3, H, W)`` in [0, 1].
            target_depth: ``(B, 1, H, W)`` normalised disparity.
            loss_mask: optional ``(B, 1, H, W)`` where the loss counts, nearest-downsampled.
            generator: drives the noise and the times ``t ~ U[0, 1)``; on any device (a CPU
                one gives the same draws whichever device the model is on).
            time_grid: ``N`` draws ``t`` from ``{k / N : k = 0 … N−1}`` (the official trainer:
                ``N = 400``) instead of ``U[0, 1)``.

        Returns:
            Scalar loss.
        """
        check_image(image)
        _check_map("target_depth", target_depth, image.shape[0], tuple(image.shape[2:]))
        if loss_mask is not None:
            _check_map("loss_mask", loss_mask, image.shape[0], tuple(image.shape[2:]))
        return self._flow_loss(image, target_depth, loss_mask, generator, time_grid)

    def _flow_loss(self, image, target_depth, loss_mask, generator, time_grid=None, **guidance) -> torch.Tensor:
        with torch.no_grad():
            image_latent, condition = self._condition(image, **guidance)
            x1 = self.encode_depth(target_depth)
            x0 = source_latent(image_latent, self.noising_step, generator)
            # Continuous t ~ U[0, 1) by default; the official trainer draws t from the grid
            # {k/400 : k = 0..399} of the same interval — the same objective up to that discretisation.
            t = draw(torch.rand, (image.shape[0],), image_latent, generator)
            if time_grid is not None:
                t = torch.floor(t * time_grid) / time_grid
            mask = None if loss_mask is None else F.interpolate(loss_mask.float(), size=x1.shape[2:], mode="nearest")
        return flow_matching_loss(lambda x, s: self.velocity(x, s, condition), x0, x1, t, mask)

    @torch.no_grad()
    def sample(self, image: torch.Tensor, *, n: int = 1, steps: int = 4,
               generator: torch.Generator | None = None) -> DepthSamples:
        """``n`` independent depth samples of each image, their mean and spread.

        Args:
            image: ``(B, 3, H, W)`` in [0, 1], sides multiples of :attr:`size_multiple`.
            n: number of samples per image.
            steps: Euler steps.
            generator: for repeatable samples; on any device (drawn there, then moved).

        Returns:
            :class:`DepthSamples` in normalised disparity, ``(n, B, 1, H, W)`` samples.
        """
        samples = self._samples(image, n, steps, generator)
        return DepthSamples(samples, *ensemble_statistics(samples))

    def _samples(self, image, n, steps, generator, **guidance) -> torch.Tensor:
        """``(n, B, 1, H, W)`` raw depth samples (no checks, no alignment)."""
        image_latent, condition = self._condition(image, **guidance)
        # Each sample gets its own noise: the input is repeated n times (the fix for the
        # official ensembling, which averaged a batch of one).
        batch = image_latent.shape[0]
        noise = draw(torch.randn, (n, *image_latent.shape), image_latent, generator)
        x0 = source_latent(image_latent.repeat(n, 1, 1, 1), self.noising_step, noise=noise.flatten(0, 1))
        cond = condition.repeat(n, 1, 1, 1)
        latents = euler_sample(lambda x, t: self.velocity(x, t, cond), x0, steps)
        return self.decode_depth(latents).unflatten(0, (n, batch))


class AmodalDepthFM(DepthFM):
    """DepthFM with two guidance channels: ``[x_t, z_img, M_a, D_o]`` (10 for SD latents).

    The guidance maps are keyword-only arguments, always in the order ``amodal_mask``,
    ``observed_depth``, ``visible_mask``, so that a call written for :class:`DepthFM`
    (``training_loss(image, target_depth, ...)``) cannot bind a map to the wrong name.
    """

    extra_channels = 2

    @classmethod
    def from_depthfm(cls, path_or_model, vae=None) -> "AmodalDepthFM":
        """Widen a DepthFM (a checkpoint path or a :class:`DepthFM`) to Amodal-DepthFM.

        The first convolution gets two extra input channels with zero weights, so the
        new model's output equals DepthFM's for any mask and observed depth;
        ``register_to_config`` records the new width so ``save_pretrained`` /
        ``from_pretrained`` round-trip.
        """
        if isinstance(path_or_model, DepthFM):
            base, unet = path_or_model, copy.deepcopy(path_or_model.unet)  # leave the given model intact
        else:
            base = DepthFM.from_checkpoint(path_or_model, vae)
            unet = base.unet
        old = unet.conv_in
        new = nn.Conv2d(old.in_channels + cls.extra_channels, old.out_channels, old.kernel_size,
                        old.stride, old.padding, device=old.weight.device, dtype=old.weight.dtype)
        with torch.no_grad():
            new.weight.zero_()
            new.weight[:, : old.in_channels] = old.weight
            new.bias.copy_(old.bias)
        unet.conv_in = new
        unet.register_to_config(in_channels=new.in_channels)
        return cls(unet, base.autoencoder, base.empty_text_embedding, base.noising_step)

    def guidance(self, latent_size, *, amodal_mask: torch.Tensor, observed_depth: torch.Tensor) -> list[torch.Tensor]:
        """``M_a`` and ``D_o`` (``(B, 1, H, W)`` in [0, 1]) nearest-downsampled to latent size."""
        return [F.interpolate(x.float(), size=latent_size, mode="nearest").to(self.empty_text_embedding.dtype)
                for x in (amodal_mask, observed_depth)]

    def training_loss(self, image: torch.Tensor, target_depth: torch.Tensor, *, amodal_mask: torch.Tensor,
                      observed_depth: torch.Tensor, generator: torch.Generator | None = None,
                      time_grid: int | None = None, visible_mask: torch.Tensor | None = None,
                      hidden_weight: float = 0.0) -> torch.Tensor:
        """Flow-matching loss on the whole object ``M_a`` (paper: better than hidden-only).

        Args:
            image: ``(B, 3, H, W)`` in [0, 1].
            target_depth: ``(B, 1, H, W)`` normalised disparity, the ground truth.
            amodal_mask: ``(B, 1, H, W)`` ``M_a`` (keyword only); the loss counts inside it.
            observed_depth: ``(B, 1, H, W)`` ``D_o`` in [0, 1] (keyword only).
            generator: drives the noise and the times (any device).
            time_grid: draw ``t`` on ``k / time_grid`` (official: 400) rather than ``U[0, 1)``.
            visible_mask, hidden_weight: ours, not the paper's: with ``hidden_weight = w > 0``
                the hidden pixels (``M_a ∧ ¬M_vis``, which needs ``visible_mask``) weigh
                ``1 + w`` in the mean, the visible ones 1; 0 (the default) is the paper's loss.

        Returns:
            Scalar loss.
        """
        check_guidance(image, amodal_mask, observed_depth, visible_mask)
        _check_map("target_depth", target_depth, image.shape[0], tuple(image.shape[2:]))
        if hidden_weight < 0:
            raise ValueError(f"hidden_weight must be ≥ 0, got {hidden_weight}")
        weight = (amodal_mask > 0).float()
        if hidden_weight:
            if visible_mask is None:
                raise ValueError("hidden_weight needs visible_mask (M_vis) to know the hidden pixels")
            weight = weight * (1 + hidden_weight * (visible_mask <= 0).float())
        return self._flow_loss(image, target_depth, weight, generator, time_grid,
                               amodal_mask=amodal_mask, observed_depth=observed_depth)

    @torch.no_grad()
    def sample(self, image: torch.Tensor, *, amodal_mask: torch.Tensor, observed_depth: torch.Tensor,
               visible_mask: torch.Tensor | None = None, n: int = 1, steps: int = 4,
               generator: torch.Generator | None = None, align: bool | str = True) -> DepthSamples:
        """``n`` independent amodal depth samples, aligned to ``D_o`` on the visible pixels.

        Args:
            image: ``(B, 3, H, W)`` in [0, 1].
            amodal_mask: ``(B, 1, H, W)`` ``M_a``, bool or {0, 1} (keyword only, as all maps).
            observed_depth: ``(B, 1, H, W)`` ``D_o`` in [0, 1].
            visible_mask: ``(B, 1, H, W)`` ``M_vis``, where each sample is least-squares
                fitted to ``D_o`` (the model is trained on ``M_a`` only, so only the
                object's visible pixels are trustworthy for the fit).
            n: number of samples; steps: Euler steps; generator: for repeatability.
            align: ``True`` (the paper): least-squares scale and shift; ``"shift"``: the shift
                alone (:func:`amodal.align.align_shift`, for a nearly flat visible part, where
                the fitted scale collapses); ``False`` returns the raw samples.

        Returns:
            :class:`DepthSamples` (samples ``(n, B, 1, H, W)``, mean, spread).

        Raises:
            ValueError: from :func:`amodal.models.checks.check_guidance` (shapes, NaN/inf, values
                outside [0, 1], an empty ``M_a``), ``align`` without ``visible_mask``, too few
                visible pixels.
        """
        if not (isinstance(align, bool) or align == "shift"):
            raise ValueError(f"align must be True, False or 'shift', got {align!r}")
        if align and visible_mask is None:
            raise ValueError("alignment needs visible_mask (M_vis); pass it or align=False")
        # The only value check of a sampling run (one device read-back); the velocity
        # function below checks nothing, so it compiles whole.
        check_guidance(image, amodal_mask, observed_depth, visible_mask)
        samples = self._samples(image, n, steps, generator, amodal_mask=amodal_mask, observed_depth=observed_depth)
        if align:
            fit = align_shift if align == "shift" else least_squares_align
            fit_mask = (visible_mask > 0).repeat(n, 1, 1, 1)
            samples = fit(samples.flatten(0, 1), observed_depth.repeat(n, 1, 1, 1).to(samples.dtype),
                          fit_mask).unflatten(0, (n, image.shape[0]))
        return DepthSamples(samples, *ensemble_statistics(samples))


TINY_LATENTS = ("pool", "space-to-depth")

# Named configurations of :func:`tiny_amodal_depthfm`, for recipes that train one from
# scratch (``Recipe.tiny_model``):
# - ``pooled-8``: the default, a 4-channel average-pooled 8×8 latent of a 32² scene: the
#   tests' and the untrained quick profile's model. Blurs edges (see
#   :mod:`amodal.models.autoencoders`), so its samples cannot be scored on a small toy.
# - ``lossless-16``: the lossless space-to-depth latent at stride 2 (12 channels, 16×16
#   for a 32² scene), attention only at the 8×8 level, where it is cheap: the model of
#   ``amodal-depthfm-tiny-synth``.
TINY_MODELS: dict[str, dict[str, Any]] = {
    "pooled-8": {},
    "lossless-16": {"latent": "space-to-depth", "downsample": 2, "attention_resolutions": [2]},
    "lossless-16-wide": {"latent": "space-to-depth", "downsample": 2, "attention_resolutions": [2], "model_channels": 64},
}


def tiny_amodal_depthfm(downsample: int = 4, seed: int = 0, latent: str = "pool", noising_step: int = NOISING_STEP,
                        **hparams: Any) -> AmodalDepthFM:
    """A randomly initialised Amodal-DepthFM small enough for a CPU (the quick profile).

    Same code paths as the full model: an LDM-configured diffusers UNet widened to
    ``2·C + 2`` input channels with zero guidance weights, a pixel-space autoencoder in
    place of the VAE.

    Args:
        downsample: the latent's stride.
        seed: the initial weights (the caller's random stream is left untouched).
        latent: ``"pool"``: :class:`PixelAutoencoder` (4 channels, average-pooled, blurs
            edges); ``"space-to-depth"``: :class:`SpaceToDepthAutoencoder` (``3·r²``
            channels, lossless; what a toy whose samples are aligned on a small visible
            part needs, see :mod:`amodal.models.autoencoders`).
        hparams: overrides of :func:`~amodal.models.ldm_convert.tiny_ldm_hparams`
            (``model_channels``, ``channel_mult``, ...).
    """
    if latent == "pool":
        autoencoder = PixelAutoencoder(4, downsample)
    elif latent == "space-to-depth":
        autoencoder = SpaceToDepthAutoencoder(downsample)
    else:
        raise ValueError(f"latent must be one of {TINY_LATENTS}, got {latent!r}")
    channels = autoencoder.latent_channels
    config = tiny_ldm_hparams(**{"in_channels": 2 * channels, "out_channels": channels, **hparams})
    # Layers initialise from the global RNG (diffusers' and the widened conv_in's): fork it so
    # the caller's stream is untouched, and only the CPU's (devices=[]): forking CUDA's too
    # would create a CUDA context for CPU work and fail in forked data-loader workers.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = build_unet(config)
        embedding = torch.randn(1, 4, config["context_dim"], generator=torch.Generator().manual_seed(seed))
        return AmodalDepthFM.from_depthfm(DepthFM(unet, autoencoder, embedding, noising_step))
