r"""LDM checkpoints and LDM ⇄ diffusers UNet names: DepthFM (paper §3.3; Gui et al. 2025) and pix2gestalt.

DepthFM's network is Stable Diffusion 2's UNet as the LDM code base writes it
(``openaimodel.UNetModel``); here it runs as diffusers'
:class:`~diffusers.UNet2DConditionModel`. The two compute the same function with
different parameter names, so this module converts between them.

``depthfm-v1.ckpt`` is a pickle ``{noising_step, empty_text_embedding, ldm_hparams,
state_dict}`` with LDM parameter names. The UNet is *built from* ``ldm_hparams``
(:func:`unet_config_from_ldm`) and the weights go through diffusers' own
``convert_ldm_unet_checkpoint``; :func:`diffusers_to_ldm` is the inverse, written
independently of it and used to write checkpoints in the official format. Attention
uses the standard ``1/√d`` scale (what the official model computes with xformers, the
path its requirements install); without xformers the official code rescales
self-attention logits by ``√(log n / log 4n)`` and is a slightly different model.

Models trained with the LDM code base itself (pix2gestalt) are saved by PyTorch Lightning:
a pickle ``{epoch, global_step, pytorch-lightning_version, state_dict, callbacks,
optimizer_states, lr_schedulers}`` whose ``state_dict`` holds every part of the
``LatentDiffusion`` module under its own prefix: the UNet ``model.diffusion_model.``, its
exponential moving average ``model_ema.`` (LDM's ``LitEma`` buffers, named by the parameter
name with every dot removed: ``model_ema.diffusion_modelinput_blocks00weight``), the VAE
``first_stage_model.``, the conditioning encoder ``cond_stage_model.``, further modules of
the model (pix2gestalt's ``cc_projection.``) and the schedule buffers (``betas``,
``alphas_cumprod``, …). :func:`read_lightning_state_dict` reads one without running pickled
code; :func:`prefixed` and :func:`unet_state` take the parts apart. The official inference
samples inside ``ema_scope()``, i.e. with the EMA weights of the UNet.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amodal.models.flow_matching import NOISING_STEP
from amodal.utils.atomic import atomic_write
from amodal.utils.hub import resolve
from amodal.utils.torch_files import NUMPY_ARRAY_GLOBALS, load_weights_only

LDM_PREFIX = "model.diffusion_model."
EMA_PREFIX = "model_ema."
CHECKPOINT_KEYS = ("noising_step", "empty_text_embedding", "ldm_hparams", "state_dict")
# The official file's name (github.com/CompVis/depth-fm, README). The authors host it at
# ommer-lab.com, not on the Hugging Face Hub; from a copy there it is the file ORG/NAME alone reads.
DEPTHFM_FILE = "depthfm-v1.ckpt"
# That file's ldm_hparams, as the official Amodal-DepthFM code prints them from it: an SD-2 UNet
# with 8 input channels (x_t and the image latent).
DEPTHFM_LDM_HPARAMS = {
    "image_size": 32, "in_channels": 8, "out_channels": 4, "model_channels": 320,
    "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
    "num_heads": 8, "use_spatial_transformer": True, "use_linear_in_transformer": True,
    "transformer_depth": 1, "context_dim": 1024, "legacy": False,
}

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
    # diffusers takes seconds to import: only the DepthFM and VAE paths pay for it
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
    # diffusers takes seconds to import: only the DepthFM and VAE paths pay for it
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

    Args:
        path: the file, or a hub id (``ORG/NAME`` reads :data:`DEPTHFM_FILE`; ``ORG/NAME:FILE``).

    Returns:
        The dict with keys ``noising_step``, ``empty_text_embedding`` (``(1, T, D)`` float
        tensor), ``ldm_hparams`` and ``state_dict`` (LDM names, prefix stripped).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a DepthFM checkpoint (the missing keys are named).
    """
    path = resolve(path, DEPTHFM_FILE, what="DepthFM checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"DepthFM checkpoint not found: {path}")
    # The official file may hold numpy arrays: allow exactly those, nothing executable.
    ckpt = load_weights_only(path, allow=NUMPY_ARRAY_GLOBALS)
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
    """Save a diffusers UNet in the official ``depthfm-v1.ckpt`` format (LDM names).

    The file appears whole or not at all (:func:`amodal.utils.atomic.atomic_write`).
    """
    state = diffusers_to_ldm({k: v.detach().cpu() for k, v in unet.state_dict().items()}, unet.config)
    checkpoint = {"noising_step": noising_step, "empty_text_embedding": empty_text_embedding.detach().cpu(),
                  "ldm_hparams": dict(ldm_hparams), "state_dict": state}
    return atomic_write(path, lambda temporary: torch.save(checkpoint, temporary))


def load_ldm_unet(state_dict: dict[str, torch.Tensor], ldm_hparams: dict[str, Any], source: str = "checkpoint"):
    """Build the UNet from ``ldm_hparams`` and load LDM-named weights strictly.

    Raises:
        ValueError: missing or unexpected keys (named) or a shape mismatch.
    """
    with torch.device("meta"):  # names only: a file of the wrong model fails before 3 GB are allocated
        skeleton = build_unet(ldm_hparams)
    expected = set(diffusers_to_ldm(skeleton.state_dict(), skeleton.config))
    given = set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise ValueError(f"{source}: UNet weights do not match ldm_hparams; "
                         f"missing {missing[:10]} ({len(missing)}), unexpected {unexpected[:10]} ({len(unexpected)})")
    unet = build_unet(ldm_hparams)
    converted = ldm_to_diffusers(state_dict, unet.config)
    try:
        unet.load_state_dict(converted, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{source}: {error}") from error
    return unet



# ------------------------------------------------------------- Lightning checkpoints


class LightningCallbackKey:
    """What a Lightning 1.4 checkpoint's ``callbacks`` dict is keyed by, read without Lightning.

    PyTorch Lightning before 1.5 (pix2gestalt pins 1.4.2) stores each callback's state
    under the callback's *class* (``callback_states[type(callback)]``), so the pickle names
    ``pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint``. That name is read as
    this empty class: a dictionary key, never called, and nothing of Lightning is imported.
    """


# Exactly the globals a Lightning 1.4 training checkpoint names beyond tensors and plain values.
LIGHTNING_GLOBALS = [(LightningCallbackKey, "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint")]


def read_lightning_state_dict(path: str | Path, model: str = "LDM") -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a PyTorch Lightning checkpoint, mapped rather than read whole.

    Only tensors, plain values and :data:`LIGHTNING_GLOBALS` are unpickled; the file is
    memory-mapped, so the optimiser state of a training checkpoint is never read.

    Args:
        path: e.g. pix2gestalt's ``epoch=000005.ckpt``, or a hub id ``ORG/NAME:FILE``
            (:func:`amodal.utils.hub.resolve`).
        model: named in errors.

    Raises:
        FileNotFoundError: no such file (or a hub file that cannot be had).
        ValueError: the file names other globals, or holds no ``state_dict`` of tensors.
    """
    path = resolve(path, what=f"{model} checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"{model} checkpoint not found: {path}")
    ckpt = load_weights_only(path, allow=LIGHTNING_GLOBALS, mmap=True)
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: not a Lightning checkpoint of a {model} model (no state_dict of tensors; "
                         f"found {found})")
    return state


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def ema_name(ldm_name: str) -> str:
    """Where LDM's ``LitEma`` keeps the average of UNet parameter ``ldm_name`` (no prefix):
    ``input_blocks.0.0.weight`` → ``model_ema.diffusion_modelinput_blocks00weight``."""
    return EMA_PREFIX + ("diffusion_model." + ldm_name).replace(".", "")


def unet_state(state: dict[str, torch.Tensor], ema: bool | None = None,
               source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], bool]:
    """The UNet's weights (LDM names, no prefix) of a whole-model LDM ``state_dict``.

    Args:
        state: the ``state_dict`` of a ``LatentDiffusion`` module.
        ema: ``True``: the moving averages (what the official inference samples with);
            ``False``: the raw weights; ``None``: the averages where the file has them.
        source: named in errors.

    Returns:
        ``(weights, used_ema)``.

    Raises:
        ValueError: no UNet in ``state``, or ``ema=True`` and an average missing (named).
    """
    raw = prefixed(state, LDM_PREFIX)
    if not raw:
        raise ValueError(f"{source}: no UNet weights (no key starts with {LDM_PREFIX!r})")
    has_ema = any(k.startswith(EMA_PREFIX + "diffusion_model") for k in state)
    if ema is False or (ema is None and not has_ema):
        return raw, False
    missing = [name for name in raw if ema_name(name) not in state]
    if missing:
        raise ValueError(f"{source}: no moving average for {len(missing)} UNet weights, e.g. "
                         f"{ema_name(missing[0])!r}; load with ema=False for the raw weights")
    return {name: state[ema_name(name)] for name in raw}, True
