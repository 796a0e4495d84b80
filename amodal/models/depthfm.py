r"""DepthFM and Amodal-DepthFM on diffusers (paper §3.3; DepthFM, Gui et al. 2025).

DepthFM is a latent flow-matching model: a Stable-Diffusion-2 UNet predicts the
velocity that carries the latent of an image to the latent of its depth map
(:mod:`amodal.flow_matching` holds the maths). Here the UNet is diffusers'
:class:`~diffusers.UNet2DConditionModel` and the autoencoder diffusers'
:class:`~diffusers.AutoencoderKL` (latents ×0.18215, the posterior's mode).

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

Checkpoints. ``depthfm-v1.ckpt`` is a pickle ``{noising_step, empty_text_embedding,
ldm_hparams, state_dict}`` with LDM parameter names. The UNet is *built from*
``ldm_hparams`` (:func:`unet_config_from_ldm`) and the weights go through diffusers'
own ``convert_ldm_unet_checkpoint``; :func:`diffusers_to_ldm` is the inverse, used
to write checkpoints in the official format. Attention uses the standard
``1/√d`` scale (what the official model computes with xformers, the path its
requirements install); without xformers the official code rescales
self-attention logits by ``√(log n / log 4n)`` and is a slightly different model.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from amodal.align import align as least_squares_align
from amodal.flow_matching import (
    NOISING_STEP,
    ensemble_statistics,
    euler_sample,
    flow_matching_loss,
    source_latent,
)

SD_LATENT_SCALE = 0.18215
LDM_PREFIX = "model.diffusion_model."
CHECKPOINT_KEYS = ("noising_step", "empty_text_embedding", "ldm_hparams", "state_dict")

# The LDM options DepthFM uses, with the only values this port supports (others would
# build a different network that diffusers' UNet2DConditionModel does not express).
_LDM_FIXED = {
    "dims": 2,
    "num_classes": None,
    "use_scale_shift_norm": False,
    "resblock_updown": False,
    "use_spatial_transformer": True,
    "conv_resample": True,
    "disable_self_attentions": None,
    "num_attention_blocks": None,
    "disable_middle_self_attn": False,
    "n_embed": None,
    "adm_in_channels": None,
}
_LDM_IGNORED = {"image_size", "dropout", "use_checkpoint", "use_fp16", "use_bf16", "legacy",
                "num_heads_upsample", "use_new_attention_order", "load_from_ckpt"}


# --------------------------------------------------------------------------- UNet config


def unet_config_from_ldm(hparams: dict[str, Any]) -> dict[str, Any]:
    """The ``UNet2DConditionModel`` config equivalent to an LDM ``UNetModel``'s ``ldm_hparams``.

    DepthFM's ``{model_channels 320, channel_mult [1,2,4,4], num_res_blocks 2,
    attention_resolutions [4,2,1], num_heads 8, context_dim 1024,
    use_linear_in_transformer True}`` becomes three ``CrossAttnDownBlock2D`` + one
    ``DownBlock2D`` (and the mirror going up), ``attention_head_dim=8`` (diffusers'
    legacy name for the number of heads), ``flip_sin_to_cos=True``, ``freq_shift=0``.

    Raises:
        ValueError: a missing required option, or one this port does not support.
    """
    required = ("in_channels", "out_channels", "model_channels", "attention_resolutions",
                "num_res_blocks", "channel_mult", "context_dim")
    missing = [k for k in required if k not in hparams]
    if missing:
        raise ValueError(f"ldm_hparams lacks {missing}")
    for key, value in hparams.items():
        if key in _LDM_FIXED and value != _LDM_FIXED[key]:
            raise ValueError(f"ldm_hparams[{key!r}] = {value!r} is not supported (only {_LDM_FIXED[key]!r})")
        known = set(required) | set(_LDM_FIXED) | _LDM_IGNORED
        known |= {"num_heads", "num_head_channels", "transformer_depth", "use_linear_in_transformer"}
        if key not in known:
            raise ValueError(f"ldm_hparams has an unknown option {key!r}")
    if not isinstance(hparams["num_res_blocks"], int):
        raise ValueError("ldm_hparams['num_res_blocks'] must be an int")
    mult = list(hparams["channel_mult"])
    channels = [hparams["model_channels"] * m for m in mult]
    attention_levels = [2**level in hparams["attention_resolutions"] for level in range(len(mult))]
    num_heads = hparams.get("num_heads", -1)
    head_channels = hparams.get("num_head_channels", -1)
    if head_channels not in (-1, None):
        heads: int | list[int] = [c // head_channels for c in channels]
    elif num_heads not in (-1, None):
        heads = num_heads
    else:
        raise ValueError("ldm_hparams needs num_heads or num_head_channels")
    return {
        "sample_size": hparams.get("image_size", 32),
        "in_channels": hparams["in_channels"],
        "out_channels": hparams["out_channels"],
        "down_block_types": tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention_levels),
        "up_block_types": tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in attention_levels[::-1]),
        "block_out_channels": tuple(channels),
        "layers_per_block": hparams["num_res_blocks"],
        "cross_attention_dim": hparams["context_dim"],
        "attention_head_dim": heads,
        "transformer_layers_per_block": hparams.get("transformer_depth", 1),
        "use_linear_projection": bool(hparams.get("use_linear_in_transformer", False)),
        "flip_sin_to_cos": True,
        "freq_shift": 0,
    }


def build_unet(hparams: dict[str, Any]):
    """A randomly initialised ``UNet2DConditionModel`` built from LDM ``hparams``."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**unet_config_from_ldm(hparams))


def tiny_ldm_hparams(**overrides: Any) -> dict[str, Any]:
    """A small DepthFM-shaped ``ldm_hparams`` (8 → 4 channels, cross-attention on all but
    the last level, linear projections) for tests and the quick profile."""
    hparams = {
        "image_size": 16, "in_channels": 8, "out_channels": 4, "model_channels": 32,
        "attention_resolutions": [1], "num_res_blocks": 1, "channel_mult": [1, 2],
        "num_heads": 2, "use_spatial_transformer": True, "use_linear_in_transformer": True,
        "transformer_depth": 1, "context_dim": 16, "legacy": False,
    }
    hparams.update(overrides)
    return hparams


# ------------------------------------------------------------------ LDM <-> diffusers names


def ldm_to_diffusers(state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """LDM-named UNet weights (with or without ``model.diffusion_model.``) → diffusers names.

    Uses diffusers' own ``convert_ldm_unet_checkpoint``; keys it does not know are dropped
    (callers check completeness with :func:`diffusers_to_ldm`).
    """
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    prefixed = {(k if k.startswith(LDM_PREFIX) else LDM_PREFIX + k): v for k, v in state_dict.items()}
    return convert_ldm_unet_checkpoint(prefixed, dict(config))


_RESNET_TO_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                  "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_TOP_TO_LDM = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def _resnet_rest(rest: str) -> str:
    layer, _, param = rest.partition(".")
    if layer not in _RESNET_TO_LDM:
        raise ValueError(f"unknown resnet parameter {rest!r}")
    return f"{_RESNET_TO_LDM[layer]}.{param}"


def diffusers_to_ldm(state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """diffusers ``UNet2DConditionModel`` weights → LDM ``UNetModel`` names (no prefix).

    The inverse of :func:`ldm_to_diffusers`, written independently of it so that a
    round trip checks both. LDM numbers blocks flatly: ``input_blocks.0`` is
    ``conv_in``; level ``b`` layer ``l`` is ``input_blocks.{1 + b(n+1) + l}`` with its
    downsampler at ``l = n`` (``n = layers_per_block``); going up, level ``b`` layer
    ``l`` is ``output_blocks.{b(n+1) + l}`` and the upsampler sits after the resnet
    (index 1) or after the attention (index 2).

    Raises:
        ValueError: a key this layout does not have.
    """
    n = config["layers_per_block"]
    up_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        top = next((p for p in _TOP_TO_LDM if key.startswith(p + ".")), None)
        if top is not None:
            out[_TOP_TO_LDM[top] + key[len(top):]] = value
            continue
        if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
            index = 1 + block * (n + 1) + layer
            out[f"input_blocks.{index}.0.{_resnet_rest(rest)}" if kind == "resnets"
                else f"input_blocks.{index}.1.{rest}"] = value
        elif m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            out[f"input_blocks.{1 + int(m[1]) * (n + 1) + n}.0.op.{m[2]}"] = value
        elif m := re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key):
            kind, layer, rest = m[1], int(m[2]), m[3]
            out[f"middle_block.{2 * layer}.{_resnet_rest(rest)}" if kind == "resnets"
                else f"middle_block.1.{rest}"] = value
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
            index = block * (n + 1) + layer
            out[f"output_blocks.{index}.0.{_resnet_rest(rest)}" if kind == "resnets"
                else f"output_blocks.{index}.1.{rest}"] = value
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            block = int(m[1])
            slot = 2 if up_attention[block] else 1
            out[f"output_blocks.{block * (n + 1) + n}.{slot}.conv.{m[2]}"] = value
        else:
            raise ValueError(f"no LDM name for diffusers key {key!r}")
    return out


# ------------------------------------------------------------------------- checkpoints


def read_depthfm_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read ``depthfm-v1.ckpt`` (or a file in its format) without running pickled code.

    Returns:
        The dict with keys ``noising_step``, ``empty_text_embedding`` (``(1, T, D)`` float
        tensor), ``ldm_hparams`` and ``state_dict`` (LDM names, prefix stripped).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a DepthFM checkpoint (the missing keys are named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DepthFM checkpoint not found: {path}")
    # The official file may hold numpy arrays: allow exactly those, nothing executable.
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    safe = [np.ndarray, np.dtype, multiarray._reconstruct, type(np.dtype("float32")), type(np.dtype("float16"))]
    try:
        with torch.serialization.safe_globals(safe):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors come in many types
        raise ValueError(f"{path}: cannot read as a DepthFM checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
        raise ValueError(f"{path}: not a DepthFM checkpoint; missing keys {missing}; found {found}")
    embedding = torch.as_tensor(np.asarray(ckpt["empty_text_embedding"]) if not torch.is_tensor(
        ckpt["empty_text_embedding"]) else ckpt["empty_text_embedding"]).float()
    if embedding.ndim == 2:
        embedding = embedding[None]
    if embedding.ndim != 3 or embedding.shape[0] != 1:
        raise ValueError(f"{path}: empty_text_embedding must be (1, T, D), got {tuple(embedding.shape)}")
    state = {k[len(LDM_PREFIX):] if k.startswith(LDM_PREFIX) else k: v for k, v in ckpt["state_dict"].items()}
    return {"noising_step": int(ckpt["noising_step"]), "empty_text_embedding": embedding,
            "ldm_hparams": dict(ckpt["ldm_hparams"]), "state_dict": state}


def write_depthfm_checkpoint(path: str | Path, unet, empty_text_embedding: torch.Tensor,
                             ldm_hparams: dict[str, Any], noising_step: int = NOISING_STEP) -> Path:
    """Save a diffusers UNet in the official ``depthfm-v1.ckpt`` format (LDM names)."""
    path = Path(path)
    state = diffusers_to_ldm({k: v.detach().cpu() for k, v in unet.state_dict().items()}, unet.config)
    torch.save({"noising_step": noising_step, "empty_text_embedding": empty_text_embedding.detach().cpu(),
                "ldm_hparams": dict(ldm_hparams), "state_dict": state}, path)
    return path


def load_ldm_unet(state_dict: dict[str, torch.Tensor], ldm_hparams: dict[str, Any], source: str = "checkpoint"):
    """Build the UNet from ``ldm_hparams`` and load LDM-named weights strictly.

    Raises:
        ValueError: missing or unexpected keys (named) or a shape mismatch.
    """
    unet = build_unet(ldm_hparams)
    expected = set(diffusers_to_ldm(unet.state_dict(), unet.config))
    given = set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise ValueError(f"{source}: UNet weights do not match ldm_hparams; "
                         f"missing {missing[:10]} ({len(missing)}), unexpected {unexpected[:10]} ({len(unexpected)})")
    converted = ldm_to_diffusers(state_dict, unet.config)
    try:
        unet.load_state_dict(converted, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{source}: {error}") from error
    return unet


# ------------------------------------------------------------------------- autoencoders


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


def load_autoencoder(vae) -> nn.Module:
    """Turn ``vae`` into an autoencoder: an existing one, an ``AutoencoderKL``, a
    diffusers folder (``config.json`` + weights, or one with a ``vae/`` subfolder) or a
    single weights file (``.safetensors``/``.ckpt``/``.bin``, diffusers or LDM names,
    built with SD's VAE config).

    Raises:
        ValueError: ``vae`` is None (DepthFM needs SD's VAE) or weights that do not fit.
        FileNotFoundError: the path does not exist.
    """
    from diffusers import AutoencoderKL

    if isinstance(vae, (SDAutoencoder, PixelAutoencoder)):
        return vae
    if isinstance(vae, AutoencoderKL):
        return SDAutoencoder(vae)
    if vae is None:
        raise ValueError("DepthFM needs Stable Diffusion's VAE: pass vae= a diffusers folder or a weights file")
    path = Path(vae)
    if not path.exists():
        raise FileNotFoundError(f"VAE not found: {path}")
    if path.is_dir():
        folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json (expected a diffusers AutoencoderKL folder)")
        return SDAutoencoder(AutoencoderKL.from_pretrained(folder, local_files_only=True))
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    model = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    if not any(k.startswith("encoder.down_blocks.") for k in state):
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        state = convert_ldm_vae_checkpoint(state, model.config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: not Stable Diffusion's VAE: {error}") from error
    return SDAutoencoder(model)


def _autoencoder_from_spec(spec: dict[str, Any], vae, folder: Path) -> nn.Module:
    if spec["type"] == "pixel":
        return PixelAutoencoder(spec["channels"], spec["downsample"])
    if vae is None and (folder / "vae" / "config.json").is_file():
        vae = folder / "vae"
    return SDAutoencoder(load_autoencoder(vae).vae, spec.get("scaling_factor", SD_LATENT_SCALE))


# ------------------------------------------------------------------------------ models


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
            path: the official checkpoint, or a file in its format.
            vae: see :func:`load_autoencoder` (a folder, a file, a module).

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
        and, for SD's VAE, ``vae/``; files are replaced only once all are written."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(folder / "unet")
        save_file({"empty_text_embedding": self.empty_text_embedding.cpu().contiguous()},
                  str(folder / "empty_text_embedding.safetensors"))
        if isinstance(self.autoencoder, SDAutoencoder):
            self.autoencoder.vae.save_pretrained(folder / "vae")
        meta = {"model": type(self).__name__, "noising_step": self.noising_step,
                "autoencoder": self.autoencoder.spec()}
        tmp = folder / "depthfm.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        tmp.replace(folder / "depthfm.json")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, vae=None):
        """Load what :meth:`save_pretrained` wrote (``vae`` overrides a saved ``vae/``).

        Raises:
            FileNotFoundError: no ``depthfm.json`` in ``folder``.
            ValueError: the folder holds the other model class.
        """
        from diffusers import UNet2DConditionModel
        from safetensors.torch import load_file

        folder = Path(folder)
        meta_path = folder / "depthfm.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{folder}: no depthfm.json (not a saved DepthFM folder)")
        meta = json.loads(meta_path.read_text())
        if meta["model"] != cls.__name__:
            raise ValueError(f"{folder} holds a {meta['model']}, not a {cls.__name__}")
        unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
        embedding = load_file(str(folder / "empty_text_embedding.safetensors"))["empty_text_embedding"]
        autoencoder = _autoencoder_from_spec(meta["autoencoder"], vae, folder)
        return cls(unet, autoencoder, embedding, meta["noising_step"])

    # ---- latent space
    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (autoencoder × UNet downsampling)."""
        return self.autoencoder.downsample * 2 ** (len(self.unet.config.block_out_channels) - 1)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] → ``(B, C, h, w)`` latent."""
        return self.autoencoder.encode(image * 2 - 1)

    def encode_depth(self, depth: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` normalised disparity → latent of ``(1 − D)·2 − 1`` on 3 channels."""
        return self.autoencoder.encode(((1 - depth) * 2 - 1).repeat(1, 3, 1, 1))

    def decode_depth(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent → ``(B, 1, H, W)`` normalised disparity in [0, 1] (channel mean, inverted)."""
        decoded = self.autoencoder.decode(latent).mean(1, keepdim=True)
        return ((1 - decoded) / 2).clamp(0, 1)

    def guidance(self, latent_size: tuple[int, int], **inputs: torch.Tensor) -> list[torch.Tensor]:
        """Extra input channels at latent size (none for DepthFM)."""
        return []

    def velocity(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The UNet's velocity for ``x`` ``(B, C, h, w)`` at times ``t`` ``(B,)``, given the
        conditioning channels ``(B, C + extra, h, w)``."""
        context = self.empty_text_embedding.to(x.dtype).expand(x.shape[0], -1, -1)
        return self.unet(torch.cat([x, condition], 1), t, encoder_hidden_states=context).sample

    def _condition(self, image: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        m = self.size_multiple
        if image.shape[2] % m or image.shape[3] % m:
            raise ValueError(f"image sides must be multiples of {m}, got {tuple(image.shape[2:])}")
        image_latent = self.encode_image(image)
        extra = self.guidance(tuple(image_latent.shape[2:]), **inputs)
        return image_latent, torch.cat([image_latent, *extra], 1)

    # ---- training and sampling
    def training_loss(self, image: torch.Tensor, target_depth: torch.Tensor, loss_mask: torch.Tensor | None = None,
                      generator: torch.Generator | None = None, **inputs: torch.Tensor) -> torch.Tensor:
        """Flow-matching loss for one batch (VAE frozen, UNet trained).

        Args:
            image: ``(B, 3, H, W)`` in [0, 1].
            target_depth: ``(B, 1, H, W)`` normalised disparity.
            loss_mask: optional ``(B, 1, H, W)`` where the loss counts, nearest-downsampled.
            generator: drives the noise and the times ``t ~ U[0, 1)``.
            inputs: the guidance of the subclass.

        Returns:
            Scalar loss.
        """
        _check_map("target_depth", target_depth, image.shape[0], tuple(image.shape[2:]))
        with torch.no_grad():
            image_latent, condition = self._condition(image, **inputs)
            x1 = self.encode_depth(target_depth)
            x0 = source_latent(image_latent, self.noising_step, generator)
            # Continuous t ~ U[0, 1); the official trainer draws t from {k/400 : k = 0..399}, a
            # 400-point grid of the same interval — the same objective up to that discretisation.
            t = torch.rand(image.shape[0], generator=generator, device=image.device, dtype=image_latent.dtype)
            mask = None
            if loss_mask is not None:
                _check_map("loss_mask", loss_mask, image.shape[0], tuple(image.shape[2:]))
                mask = F.interpolate(loss_mask.float(), size=x1.shape[2:], mode="nearest")
        return flow_matching_loss(lambda x, s: self.velocity(x, s, condition), x0, x1, t, mask)

    @torch.no_grad()
    def _sample_latents(self, image_latent, condition, n, steps, generator):
        # Each sample gets its own noise: the input is repeated n times (the fix for the
        # official ensembling, which averaged a batch of one).
        batch = image_latent.shape[0]
        noise = torch.randn((n, *image_latent.shape), generator=generator,
                            device=image_latent.device, dtype=image_latent.dtype)
        x0 = source_latent(image_latent.repeat(n, 1, 1, 1), self.noising_step, noise=noise.flatten(0, 1))
        cond = condition.repeat(n, 1, 1, 1)
        x1 = euler_sample(lambda x, t: self.velocity(x, t, cond), x0, steps)
        return x1.unflatten(0, (n, batch))

    @torch.no_grad()
    def sample(self, image: torch.Tensor, n: int = 1, steps: int = 4,
               generator: torch.Generator | None = None) -> DepthSamples:
        """``n`` independent depth samples of each image, their mean and spread.

        Args:
            image: ``(B, 3, H, W)`` in [0, 1], sides multiples of :attr:`size_multiple`.
            n: number of samples per image.
            steps: Euler steps.
            generator: for repeatable samples (on the model's device).

        Returns:
            :class:`DepthSamples` in normalised disparity, ``(n, B, 1, H, W)`` samples.
        """
        image_latent, condition = self._condition(image)
        latents = self._sample_latents(image_latent, condition, n, steps, generator)
        samples = self.decode_depth(latents.flatten(0, 1)).unflatten(0, latents.shape[:2])
        return DepthSamples(samples, *ensemble_statistics(samples))


class AmodalDepthFM(DepthFM):
    """DepthFM with two guidance channels: ``[x_t, z_img, M_a, D_o]`` (10 for SD latents)."""

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

    def guidance(self, latent_size, amodal_mask=None, observed_depth=None) -> list[torch.Tensor]:
        """``M_a`` and ``D_o`` (``(B, 1, H, W)`` in [0, 1]) nearest-downsampled to latent size."""
        if amodal_mask is None or observed_depth is None:
            raise ValueError("AmodalDepthFM needs amodal_mask and observed_depth")
        return [F.interpolate(x.float(), size=latent_size, mode="nearest").to(self.empty_text_embedding.dtype)
                for x in (amodal_mask, observed_depth)]

    def _check_guidance(self, image, amodal_mask, observed_depth):
        size = tuple(image.shape[2:])
        _check_map("amodal_mask", amodal_mask, image.shape[0], size)
        _check_map("observed_depth", observed_depth, image.shape[0], size)
        if not torch.isfinite(observed_depth).all():
            raise ValueError("observed_depth has NaN or inf")
        if observed_depth.min() < 0 or observed_depth.max() > 1:
            raise ValueError("observed_depth must be normalised disparity in [0, 1]")
        if (amodal_mask.flatten(1) > 0).sum(1).min() == 0:
            raise ValueError("amodal_mask is empty for at least one sample")

    def training_loss(self, image, amodal_mask, observed_depth, target_depth, generator=None) -> torch.Tensor:
        """Flow-matching loss on the whole object ``M_a`` (paper: better than hidden-only).

        Args:
            image: ``(B, 3, H, W)`` in [0, 1]; amodal_mask, observed_depth, target_depth:
                ``(B, 1, H, W)``.
        """
        self._check_guidance(image, amodal_mask, observed_depth)
        return super().training_loss(image, target_depth, amodal_mask > 0, generator,
                                     amodal_mask=amodal_mask, observed_depth=observed_depth)

    @torch.no_grad()
    def sample(self, image, amodal_mask, observed_depth, n: int = 1, steps: int = 4,
               generator: torch.Generator | None = None, visible_mask: torch.Tensor | None = None,
               align: bool = True) -> DepthSamples:
        """``n`` independent amodal depth samples, aligned to ``D_o`` on the visible pixels.

        Args:
            image: ``(B, 3, H, W)`` in [0, 1].
            amodal_mask: ``(B, 1, H, W)`` ``M_a``, bool or {0, 1}.
            observed_depth: ``(B, 1, H, W)`` ``D_o`` in [0, 1].
            n: number of samples; steps: Euler steps; generator: for repeatability.
            visible_mask: ``(B, 1, H, W)`` ``M_vis``, where each sample is least-squares
                fitted to ``D_o`` (the model is trained on ``M_a`` only, so only the
                object's visible pixels are trustworthy for the fit).
            align: ``False`` returns the raw samples.

        Returns:
            :class:`DepthSamples` (samples ``(n, B, 1, H, W)``, mean, spread).

        Raises:
            ValueError: bad shapes, ``align`` without ``visible_mask``, too few visible pixels.
        """
        self._check_guidance(image, amodal_mask, observed_depth)
        if align:
            if visible_mask is None:
                raise ValueError("alignment needs visible_mask (M_vis); pass it or align=False")
            _check_map("visible_mask", visible_mask, image.shape[0], tuple(image.shape[2:]))
        image_latent, condition = self._condition(image, amodal_mask=amodal_mask, observed_depth=observed_depth)
        latents = self._sample_latents(image_latent, condition, n, steps, generator)
        samples = self.decode_depth(latents.flatten(0, 1))
        if align:
            fit_mask = (visible_mask > 0).repeat(n, 1, 1, 1)
            samples = least_squares_align(samples, observed_depth.repeat(n, 1, 1, 1).to(samples.dtype), fit_mask)
        samples = samples.unflatten(0, latents.shape[:2])
        return DepthSamples(samples, *ensemble_statistics(samples))


def tiny_amodal_depthfm(downsample: int = 4, seed: int = 0, **hparams: Any) -> AmodalDepthFM:
    """A randomly initialised Amodal-DepthFM small enough for a CPU (the quick profile).

    Same code paths as the full model: an LDM-configured diffusers UNet widened 8 → 10
    with zero channels, a pixel-space :class:`PixelAutoencoder` in place of the VAE.
    """
    generator = torch.Generator().manual_seed(seed)
    config = tiny_ldm_hparams(**hparams)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = build_unet(config)
    embedding = torch.randn(1, 4, config["context_dim"], generator=generator)
    base = DepthFM(unet, PixelAutoencoder(4, downsample), embedding)
    return AmodalDepthFM.from_depthfm(base)


# ------------------------------------------------------------- quick profile: a toy world


def ambiguous_occlusion_batch(batch: int, size: int = 32, generator: torch.Generator | None = None,
                              slope: float = 0.3) -> dict[str, torch.Tensor]:
    """Synthetic scenes whose hidden depth is ambiguous, for training the tiny model.

    A slightly tilted orange plate stands before a sloping floor; a dark bar in front
    hides its right part. Behind the bar the plate bends towards or away from the camera
    (disparity ``± slope·u`` added, ``u`` from 0 at the bar's edge to 1 at the plate's end)
    with equal chance. Nothing in the image tells which: the right answer is a
    *distribution* with two modes, which is what a generative model can represent.

    Returns:
        dict of ``image`` ``(B, 3, S, S)``, ``amodal_mask``, ``visible_mask``,
        ``observed_depth``, ``target_depth`` ``(B, 1, S, S)`` and ``bend`` ``(B,)`` (±1).
    """
    g = generator
    rows = torch.arange(size, dtype=torch.float32).view(-1, 1).expand(size, size)
    cols = torch.arange(size, dtype=torch.float32).view(1, -1).expand(size, size)
    out = {k: torch.zeros(batch, 1, size, size) for k in
           ("amodal_mask", "visible_mask", "observed_depth", "target_depth")}
    image = torch.zeros(batch, 3, size, size)
    bend = torch.randint(0, 2, (batch,), generator=g).float() * 2 - 1
    for b in range(batch):
        r = torch.randint(0, size // 8 + 1, (4,), generator=g)
        top, left = int(r[0]) + size // 8, int(r[1]) + size // 16
        bottom, right = top + size // 2 + int(r[2]), left + 3 * size // 4 + int(r[3])
        edge = left + 2 * (right - left) // 5
        d0 = 0.45 + 0.15 * float(torch.rand((), generator=g))
        # a visible tilt too: on a flat visible part least-squares alignment has no scale to fit
        tilt = (0.08 + 0.07 * float(torch.rand((), generator=g))) * (1 if torch.rand((), generator=g) < 0.5 else -1)
        floor = 0.1 + 0.25 * rows / size
        plate = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
        bar = (rows >= top - 2) & (rows < bottom + 2) & (cols >= edge) & (cols < right + 2)
        u = ((cols - edge) / max(right - 1 - edge, 1)).clamp(min=0)
        seen_depth = d0 + tilt * (cols - left) / (right - left)
        plate_depth = seen_depth + float(bend[b]) * slope * u
        observed = torch.where(bar, torch.tensor(0.9), torch.where(plate, seen_depth, floor))
        out["observed_depth"][b, 0] = observed
        out["target_depth"][b, 0] = torch.where(plate, plate_depth, observed)
        out["amodal_mask"][b, 0] = plate.float()
        out["visible_mask"][b, 0] = (plate & ~bar).float()
        colour = torch.stack([0.55 + 0.3 * floor, 0.6 + 0.2 * floor, 0.7 + 0.0 * floor])
        colour = torch.where(plate, torch.tensor([0.9, 0.5, 0.15]).view(3, 1, 1), colour)
        image[b] = torch.where(bar, torch.tensor([0.15, 0.15, 0.2]).view(3, 1, 1), colour)
    return {"image": image, **out, "bend": bend}


def train_toy(model: AmodalDepthFM, steps: int = 300, batch: int = 16, size: int = 32, lr: float = 2e-3,
              seed: int = 0) -> list[float]:
    """Train ``model`` on :func:`ambiguous_occlusion_batch` with Adam; returns the losses.

    A few hundred steps take seconds on a CPU for :func:`tiny_amodal_depthfm`; enough
    to learn the scenes' structure, not a substitute for the paper's 15K × 128 samples.
    """
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.unet.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        data = ambiguous_occlusion_batch(batch, size, generator)
        loss = model.training_loss(data["image"], data["amodal_mask"], data["observed_depth"],
                                   data["target_depth"], generator=generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    return losses
