"""The autoencoders DepthFM works in: Stable Diffusion's VAE, and a pixel-space stand-in.

DepthFM (paper §3.3) runs its flow in the latent space of SD's
:class:`~diffusers.AutoencoderKL`: the posterior's *mode* (no sampling, so encoding is
deterministic), scaled by 0.18215 so that latents have about unit variance.
:class:`PixelAutoencoder` keeps the same interface (``encode``, ``decode``,
``downsample``, ``latent_channels``, ``spec``) in pixel space, so the quick CPU profile
runs every code path of the model without SD's VAE.

:class:`PixelAutoencoder` average-pools, so it blurs: on a 32² toy scene at ``downsample=4``
a round trip mixes every pixel within four of an edge with its neighbours. For amodal
depth that is fatal: the samples are least-squares aligned to ``D_o`` on the visible
pixels, the blurred edges of the visible part make that fit meaningless (the exact hidden
shapes of notebook 04's toy, round-tripped, get a scale of about ±0.1 and lose their
bend), and a model sampling both shapes perfectly would still be scored on one.
:class:`SpaceToDepthAutoencoder` is the lossless alternative at the same latent size:
each ``r × r`` block of pixels becomes ``3·r²`` channels (``pixel_unshuffle``), and
``decode(encode(x)) == x`` exactly.

``spec()`` is what a saved model records about its autoencoder, and
:func:`autoencoder_from_spec` rebuilds it on load.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from amodal.models.checkpoints import read_safetensors
from amodal.utils.hub import HubFiles, resolve
from amodal.utils.torch_files import load_weights_only

SD_LATENT_SCALE = 0.18215
# Stable Diffusion's first-stage config (the LDM ``ddconfig`` of its VAE, as in pix2gestalt's yaml).
SD_VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                   "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
# A VAE repository that amodal.utils.hub.KNOWN_WEIGHTS does not know (e.g. a fine-tuned SD VAE)
# is read as a diffusers AutoencoderKL folder at its root; name a file for anything else.
HUB_VAE_FOLDER = HubFiles(("config.json", "diffusion_pytorch_model.safetensors"), folder="")

def local_load_options() -> dict[str, Any]:
    """Keyword arguments for diffusers' ``from_pretrained`` on a folder of ours.

    Local files only. And ``low_cpu_mem_usage`` only where ``accelerate`` is installed:
    diffusers defaults it to on, and without ``accelerate`` it turns it off again with a
    warning advising the user to install it — advice nobody who loads a folder needs.
    """
    # diffusers takes seconds to import: only the DepthFM and VAE paths pay for it
    from diffusers.utils import is_accelerate_available

    return {"local_files_only": True, "low_cpu_mem_usage": is_accelerate_available()}


class SDAutoencoder(nn.Module):
    """Stable Diffusion's VAE as DepthFM uses it: the posterior's mode, latents ×0.18215."""

    def __init__(self, vae, scaling_factor: float = SD_LATENT_SCALE):
        super().__init__()
        self.vae = vae.requires_grad_(False).eval()
        self.scaling_factor = scaling_factor
        self.downsample = 2 ** (len(vae.config.block_out_channels) - 1)
        self.latent_channels = vae.config.latent_channels

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] → ``(B, 4, H/8, W/8)`` scaled latents."""
        return self.vae.encode(x).latent_dist.mode() * self.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents → ``(B, 3, H, W)`` in about [-1, 1]."""
        return self.vae.decode(z / self.scaling_factor).sample

    def spec(self) -> dict[str, Any]:
        return {"type": "sd-vae", "scaling_factor": self.scaling_factor}


class PixelAutoencoder(nn.Module):
    """A stand-in for the VAE that works in pixel space, for the quick CPU profile.

    ``encode`` average-pools by ``downsample`` and pads the 3 colour channels with
    zeros to ``channels`` (4, like SD latents, so the UNet keeps DepthFM's 8 → 10
    channel layout); ``decode`` keeps the first 3 channels and upsamples back.
    With ``downsample=1`` it is the identity on the colour channels.
    """

    def __init__(self, channels: int = 4, downsample: int = 1):
        super().__init__()
        if channels < 3 or downsample < 1:
            raise ValueError(f"need channels ≥ 3 and downsample ≥ 1, got {channels}, {downsample}")
        self.latent_channels, self.downsample = channels, downsample

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = F.avg_pool2d(x, self.downsample) if self.downsample > 1 else x
        return F.pad(z, (0, 0, 0, 0, 0, self.latent_channels - 3))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = z[:, :3]
        return F.interpolate(x, scale_factor=self.downsample, mode="bilinear", align_corners=False) \
            if self.downsample > 1 else x

    def spec(self) -> dict[str, Any]:
        return {"type": "pixel", "channels": self.latent_channels, "downsample": self.downsample}


class SpaceToDepthAutoencoder(nn.Module):
    """A lossless pixel-space stand-in for the VAE: ``r × r`` pixel blocks become channels.

    ``encode`` is ``pixel_unshuffle``: ``(B, 3, H, W)`` → ``(B, 3·r², H/r, W/r)``; ``decode``
    is its exact inverse ``pixel_shuffle``. The latent is as small as
    :class:`PixelAutoencoder`'s (the UNet costs the same but for its first and last
    convolutions) and loses nothing, edges included.

    Args:
        downsample: ``r``, the block side (the latent's stride).
    """

    def __init__(self, downsample: int = 4):
        super().__init__()
        if downsample < 1:
            raise ValueError(f"need downsample ≥ 1, got {downsample}")
        self.downsample = downsample
        self.latent_channels = 3 * downsample * downsample

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(x, self.downsample)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(z, self.downsample)

    def spec(self) -> dict[str, Any]:
        return {"type": "space-to-depth", "downsample": self.downsample}


def load_autoencoder(vae) -> nn.Module:
    """Turn ``vae`` into an autoencoder: an existing one, an ``AutoencoderKL``, a
    diffusers folder (``config.json`` + weights, or one with a ``vae/`` subfolder) or a
    single weights file (``.safetensors``/``.ckpt``/``.bin``, diffusers or LDM names,
    built with SD's VAE config); or a Hugging Face Hub id of one
    (``stable-diffusion-v1-5/stable-diffusion-v1-5`` reads its ``vae/``; ``ORG/NAME:FILE`` one file).

    Raises:
        ValueError: ``vae`` is None (DepthFM needs SD's VAE) or weights that do not fit.
        FileNotFoundError: the path does not exist; a hub id not in the cache and not downloadable.
    """
    # diffusers takes seconds to import: only the DepthFM and VAE paths pay for it
    from diffusers import AutoencoderKL

    if isinstance(vae, (SDAutoencoder, PixelAutoencoder, SpaceToDepthAutoencoder)):
        return vae
    if isinstance(vae, AutoencoderKL):
        return SDAutoencoder(vae)
    if vae is None:
        raise ValueError("DepthFM needs Stable Diffusion's VAE: pass vae= a diffusers folder or a weights file")
    path = resolve(vae, fallback=HUB_VAE_FOLDER, what="VAE")
    if path.is_dir():
        folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json (expected a diffusers AutoencoderKL folder)")
        return SDAutoencoder(AutoencoderKL.from_pretrained(folder, **local_load_options()))
    if path.suffix == ".safetensors":
        state, _ = read_safetensors(path)
    else:
        state = load_weights_only(path)  # tensors and plain values only: no code runs from the file
        state = state.get("state_dict", state)
    return SDAutoencoder(vae_from_ldm(state, source=str(path)))


def build_vae(ddconfig: dict[str, Any] | None = None, embed_dim: int | None = None):
    """A randomly initialised ``AutoencoderKL`` equivalent to LDM's for ``ddconfig``.

    LDM's ``AutoencoderKL`` (``ldm/models/autoencoder.py``, ``ldm/modules/diffusionmodules/model.py``)
    is what diffusers' class computes: ``len(ch_mult)`` levels of ``num_res_blocks`` resnets
    (one more going up) with ``ch·m`` channels, GroupNorm of 32 groups, attention only in the
    middle block, ``quant_conv`` from ``2·z_channels`` to ``2·embed_dim``.

    Args:
        ddconfig: the LDM ``ddconfig``; Stable Diffusion's (:data:`SD_VAE_DDCONFIG`) when not given.
        embed_dim: the LDM ``embed_dim``; ``z_channels`` when not given.

    Raises:
        ValueError: a ``ddconfig`` diffusers' class does not express (attention outside the
            middle, ``double_z`` off, ``embed_dim ≠ z_channels``).
    """
    # diffusers takes seconds to import: only the DepthFM and VAE paths pay for it
    from diffusers import AutoencoderKL

    ddconfig = dict(SD_VAE_DDCONFIG if ddconfig is None else ddconfig)
    if ddconfig.get("attn_resolutions") or not ddconfig.get("double_z", True) or \
            (embed_dim or ddconfig["z_channels"]) != ddconfig["z_channels"]:
        raise ValueError(f"ddconfig {ddconfig} (embed_dim {embed_dim}) is not an SD-style VAE "
                         "(needs attn_resolutions [], double_z, embed_dim = z_channels)")
    levels = len(ddconfig["ch_mult"])
    return AutoencoderKL(
        in_channels=ddconfig["in_channels"], out_channels=ddconfig["out_ch"], latent_channels=ddconfig["z_channels"],
        layers_per_block=ddconfig["num_res_blocks"],
        block_out_channels=tuple(ddconfig["ch"] * m for m in ddconfig["ch_mult"]),
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
    ).eval()


def vae_from_ldm(state: dict[str, torch.Tensor], ddconfig: dict[str, Any] | None = None, embed_dim: int | None = None,
                 source: str = "checkpoint"):
    """An ``AutoencoderKL`` built by :func:`build_vae` and loaded strictly with ``state``.

    Args:
        state: the VAE's weights, LDM names (``encoder.down.0.block.0.norm1.weight``, with or
            without ``first_stage_model.``; converted by diffusers' ``convert_ldm_vae_checkpoint``)
            or diffusers names.
        ddconfig, embed_dim: see :func:`build_vae`.
        source: named in errors.

    Raises:
        ValueError: a ``ddconfig`` diffusers cannot express, or weights that do not fit.
    """
    try:
        model = build_vae(ddconfig, embed_dim)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from error
    if not any(k.startswith("encoder.down_blocks.") for k in state):
        # diffusers takes seconds to import: only the DepthFM and VAE paths pay for it
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        state = convert_ldm_vae_checkpoint(state, model.config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{source}: not Stable Diffusion's VAE: {error}") from error
    return model


def autoencoder_from_spec(spec: dict[str, Any], vae, folder: Path) -> nn.Module:
    """Rebuild the autoencoder a saved model's ``spec`` describes.

    Args:
        spec: what ``spec()`` returned when the model was saved.
        vae: for SD's VAE, anything :func:`load_autoencoder` takes; ``None`` uses the
            ``vae/`` subfolder of ``folder``.
        folder: the saved model's folder.
    """
    if spec["type"] == "pixel":
        return PixelAutoencoder(spec["channels"], spec["downsample"])
    if spec["type"] == "space-to-depth":
        return SpaceToDepthAutoencoder(spec["downsample"])
    if vae is None and (folder / "vae" / "config.json").is_file():
        vae = folder / "vae"
    return SDAutoencoder(load_autoencoder(vae).vae, spec.get("scaling_factor", SD_LATENT_SCALE))
