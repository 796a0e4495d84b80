"""Checkpoint files of Depth Anything V2 and Amodal-DAV2: official layouts ⇄ ours.

Four formats are read, told apart by their keys and the config beside them:

===================  ============================================  =========================
format               keys                                          file
===================  ============================================  =========================
``dav2_official``    ``pretrained.*`` (DINOv2), ``depth_head.*``   ``depth_anything_v2_vit{s,b,l,g}.pth``
``amodal_official``  ``encoder.pretrained.*``, ``encoder.depth_head.*``  released ``model.safetensors``
``ours``             ``encoder.*``, ``head.*``                     ``model.safetensors`` + ``config.json``
``transformers``     ``backbone.*``, ``neck.*``, ``head.*``        ``model.safetensors`` + ``config.json``
                                                                   (``model_type`` ``depth_anything``)
===================  ============================================  =========================

The last is ``transformers``' ``DepthAnythingForDepthEstimation`` (the hub's
``depth-anything/Depth-Anything-V2-*-hf``); its names and config are mapped in
:mod:`amodal.models.transformers_format`. :func:`checkpoint_format` names the format of a file
or folder, and :func:`open_checkpoint` reads any of them into our names with the shape the file
states; what fits none is refused with its keys named.

Our names are the official ones with the prefixes shortened, except two things:
DINOv2's ``mask_token`` (used only by DINOv2's masked pre-training, never by depth) is
dropped on reading and written back as zeros, and ViT-G's SwiGLU ``mlp.w12`` / ``mlp.w3``
are timm's ``mlp.fc1`` / ``mlp.fc2``.

Loading is strict: a file that does not fit the model raises a ``ValueError`` naming the
missing, unexpected and mis-shaped keys and what the file looks like (which layout, which
size), so that a ViT-L file given to a ViT-S model, or a DepthFM file, says so.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from amodal.models import transformers_format
from amodal.models.configs import CONFIGS, DAV2Config
from amodal.utils.hub import HubFiles, resolve
from amodal.utils.torch_files import load_weights_only

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# What a hub repository that amodal.utils.hub.KNOWN_WEIGHTS does not know is read as: a
# save_pretrained folder (the released Amodal-DAV2 has the same two files).
HUB_FOLDER = HubFiles((WEIGHTS_NAME,), optional=(CONFIG_NAME,), folder="")

_SWIGLU_TO_TIMM = ((re.compile(r"(blocks\.\d+\.mlp\.)w12\."), r"\1fc1."), (re.compile(r"(blocks\.\d+\.mlp\.)w3\."), r"\1fc2."))
_SWIGLU_TO_OFFICIAL = ((re.compile(r"(blocks\.\d+\.mlp\.)fc1\."), r"\1w12."), (re.compile(r"(blocks\.\d+\.mlp\.)fc2\."), r"\1w3."))


def read_checkpoint(path: str | Path | None) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Read the tensors of a checkpoint file or folder.

    Args:
        path: a ``.pth``/``.pt`` file, a ``.safetensors`` file, or a folder holding
            ``model.safetensors`` (ours, or the released Amodal-DAV2 folder); or a Hugging Face
            Hub id of one (:func:`amodal.utils.hub.resolve`; an unknown repository is read as a
            folder: :data:`HUB_FOLDER`).

    Returns:
        (state dict as stored, the config that says what it is: ours (``{"model", "config"}``, from
        the weights' metadata or ``config.json``), a ``transformers`` ``config.json`` (it names its
        ``model_type``), or ``None``).

    Raises:
        FileNotFoundError: no path, no such file, or a folder without ``model.safetensors``;
            a hub id whose files cannot be had (offline and not cached, ...).
        ValueError: a file that holds no tensors, or names code to run (it is not read).
    """
    if path is None:
        raise FileNotFoundError(
            "no checkpoint path given: pass an official .pth / model.safetensors or a save_pretrained folder"
        )
    path = resolve(path, fallback=HUB_FOLDER, what="checkpoint")
    if path.is_dir():
        folder, path = path, path / WEIGHTS_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{folder} holds no {WEIGHTS_NAME}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    config = None
    if path.suffix == ".safetensors":
        state, metadata = read_safetensors(path)
        if "amodal_config" in metadata:
            config = _json(metadata["amodal_config"], f"{path} (its amodal_config metadata)")
        elif (path.parent / CONFIG_NAME).is_file():
            candidate = _json((path.parent / CONFIG_NAME).read_text(), str(path.parent / CONFIG_NAME))
            ours = isinstance(candidate, dict) and "model" in candidate and "config" in candidate
            config = candidate if ours or transformers_format.is_transformers_config(candidate) else None
        if config is not None and not isinstance(config, dict):
            raise ValueError(f"{path}: its config is not a JSON object")
    else:
        state = find_weights(load_weights_only(path), str(path))  # tensors and plain values: no code runs
    if not _is_tensor_dict(state):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state, config


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of a ``.safetensors`` file.

    Raises:
        ValueError: a truncated, empty or foreign file (safetensors' own error, with the file named).
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata() or {}
    except SafetensorError as error:
        raise ValueError(f"{path}: not a readable safetensors file ({error}); download or save it again") from None


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not JSON ({error.msg} at line {error.lineno})") from None


# Where training scripts put the weights beside optimizer, epoch, scheduler, ...;
# plain weights first, then averaged ones (used only when nothing else fits).
WRAPPER_KEYS = ("state_dict", "model", "module", "model_state_dict", "net", "network", "weights",
                "ema", "model_ema", "state_dict_ema", "ema_state_dict")


def find_weights(loaded: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict inside what ``torch.load`` returned.

    A bare state dict is returned as it is. A training checkpoint such as
    ``{"model": ..., "optimizer": ..., "epoch": ..., "scheduler": ...}`` is searched under
    :data:`WRAPPER_KEYS`, in that order, for a dict of tensors in a Depth Anything layout
    (see :func:`detect_layout`); failing that, for any dict of tensors (so that a wrapped
    file of another model is described by the strict loader, not called empty).

    Args:
        loaded: the object ``torch.load`` returned.
        source: the file, for the message.

    Raises:
        ValueError: no dict of tensors at the top or under a wrapper key; the message
            lists the top-level keys found.
    """
    if _is_tensor_dict(loaded):
        return loaded
    if not isinstance(loaded, dict):
        raise ValueError(f"{source} does not hold a state dict of tensors: it holds a {type(loaded).__name__}")
    wrapped = [loaded[key] for key in WRAPPER_KEYS if _is_tensor_dict(loaded.get(key))]
    for state in wrapped:
        if detect_layout(state) != "unknown":
            return state
    if wrapped:
        return wrapped[0]
    found = ", ".join(f"{key!r} ({type(value).__name__})" for key, value in list(loaded.items())[:12])
    raise ValueError(
        f"{source} does not hold a state dict of tensors: its top-level keys are {found or 'none'}; "
        f"the weights were looked for at the top and under {', '.join(WRAPPER_KEYS)}"
    )


def _is_tensor_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def detect_layout(keys) -> str:
    """``"dav2_official"``, ``"amodal_official"``, ``"ours"``, ``"transformers"`` or ``"unknown"``."""
    keys = list(keys)
    if any(k.startswith("encoder.pretrained.") for k in keys) and any(k.startswith("encoder.depth_head.") for k in keys):
        return "amodal_official"
    if any(k.startswith("pretrained.") for k in keys) and any(k.startswith("depth_head.") for k in keys):
        return "dav2_official"
    if any(k.startswith("encoder.blocks.") for k in keys) and any(k.startswith("head.") for k in keys):
        return "ours"
    if transformers_format.is_transformers_state(keys):
        return "transformers"
    return "unknown"


# What each format is, in the words of the messages that list them.
FORMATS = {
    "dav2_official": "an official Depth Anything V2 .pth (pretrained.*, depth_head.*)",
    "amodal_official": "the released Amodal-DAV2 model.safetensors (encoder.pretrained.*, encoder.depth_head.*)",
    "ours": "a folder of ours (model.safetensors + config.json; encoder.*, head.*)",
    "transformers": f"a {transformers_format.NAME} folder (model.safetensors + config.json; backbone.*, neck.*, head.*)",
}


@dataclass(frozen=True)
class CheckpointFormat:
    """Which format a checkpoint is in: ``name`` a key of :data:`FORMATS` or ``"unknown"``, and
    ``description``, one line saying the format, the model and its size."""

    name: str
    description: str


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read by :func:`open_checkpoint`: tensors under our names and what the file says."""

    source: str                  # the file or folder, for messages
    format: CheckpointFormat
    state: dict[str, torch.Tensor]
    config: DAV2Config | None    # the shape the file states (ours, transformers), else None
    model: str | None            # the class a file of ours was saved from


def checkpoint_format(path: str | Path) -> CheckpointFormat:
    """The format of a checkpoint file or folder (or hub id): official DAV2 ``.pth``, released
    Amodal-DAV2, ours, ``transformers``, or ``"unknown"`` with its keys named.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_checkpoint` (no such file, no tensors).
    """
    return identify(*read_checkpoint(path))


def identify(state: dict[str, torch.Tensor], config: dict | None = None) -> CheckpointFormat:
    """The format of tensors as read, with the config beside them (:func:`read_checkpoint`).

    A ``transformers`` config.json says what its tensors are, unless they are plainly of another
    format (a stray config.json beside an official or our file): then the keys win.
    """
    layout = detect_layout(state)
    if transformers_format.is_transformers_config(config) and layout in ("transformers", "unknown"):
        return CheckpointFormat("transformers", transformers_format.describe_config(config))
    return CheckpointFormat(layout, describe(state))


def open_checkpoint(path: str | Path | None) -> Checkpoint:
    """Read a checkpoint of any known format into our names, with the shape it states.

    Args:
        path: as :func:`read_checkpoint` takes it.

    Raises:
        FileNotFoundError: as :func:`read_checkpoint`.
        ValueError: a file that fits no known format (its keys named); a ``transformers``
            checkpoint of another model or of metric depth, or without its ``config.json``;
            a config of ours that is broken.
    """
    state, stored = read_checkpoint(path)
    source, found = str(path), identify(state, stored)
    if found.name == "unknown":
        formats = list(FORMATS.values())
        raise ValueError(f"{source} is {found.description}; Depth Anything V2 and Amodal-DAV2 weights come as "
                         f"{', '.join(formats[:-1])}, or {formats[-1]}")
    if found.name == "transformers":
        if stored is None:
            raise ValueError(f"{source} holds the tensors of a {transformers_format.NAME} without its config.json, "
                             "which says the depth type and the tapped blocks: load the folder that holds both")
        config = transformers_format.to_dav2_config(stored, source)
        return Checkpoint(source, found, transformers_format.to_ours(state, stored), config, None)
    config = None
    if stored is not None and transformers_format.is_transformers_config(stored):
        stored = None  # a stray transformers config.json beside tensors of another format (identify)
    if stored is not None:
        try:
            config = DAV2Config.from_dict(stored.get("config"))
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
    return Checkpoint(source, found, to_ours(state, source), config, stored.get("model") if stored else None)


def to_ours(state: dict[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """Rename an official (or our own) state dict to our module names.

    Args:
        state: tensors in any of the three layouts.
        source: the file, for the error message.

    Raises:
        ValueError: the keys fit none of the known layouts.
    """
    layout = detect_layout(state)
    if layout == "transformers":
        return transformers_format.to_ours(state)
    prefixes = {
        "dav2_official": (("pretrained.", "encoder."), ("depth_head.", "head.")),
        "amodal_official": (("encoder.pretrained.", "encoder."), ("encoder.depth_head.", "head.")),
        "ours": (("encoder.", "encoder."), ("head.", "head.")),
    }
    if layout == "unknown":
        raise ValueError(f"{source} is not a Depth Anything V2 / Amodal-DAV2 checkpoint: it is {describe(state)}")
    out = {}
    for key, value in state.items():
        for old, new in prefixes[layout]:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        else:
            out[key] = value  # a stray key: kept, so that strict loading names it
            continue
        if key == "encoder.mask_token":
            continue
        for pattern, replacement in _SWIGLU_TO_TIMM:
            key = pattern.sub(replacement, key)
        out[key] = value
    return out


def to_official(state: dict[str, torch.Tensor], amodal: bool) -> dict[str, torch.Tensor]:
    """Our state dict in the official layout (DAV2 ``.pth`` or released Amodal-DAV2).

    Args:
        state: our keys (``encoder.*``, ``head.*``).
        amodal: write the Amodal-DAV2 prefixes (``encoder.pretrained.`` ...).
    """
    encoder, head = ("encoder.pretrained.", "encoder.depth_head.") if amodal else ("pretrained.", "depth_head.")
    out = {}
    for key, value in state.items():
        if key.startswith("encoder."):
            name = key[len("encoder."):]
            swiglu = any(p.search(name) for p, _ in _SWIGLU_TO_OFFICIAL) and _is_swiglu(state)
            if swiglu:
                for pattern, replacement in _SWIGLU_TO_OFFICIAL:
                    name = pattern.sub(replacement, name)
            out[encoder + name] = value
        elif key.startswith("head."):
            out[head + key[len("head."):]] = value
        else:
            raise ValueError(f"unexpected key {key!r}: not one of ours (encoder.*, head.*)")
    out[encoder + "mask_token"] = torch.zeros(1, state["encoder.cls_token"].shape[-1])
    return {k: v.contiguous() for k, v in out.items()}  # plain layout, as the official files


def infer_shape(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """What the tensors of our layout say about the model.

    Returns:
        dict with ``embed_dim``, ``depth``, ``features``, ``out_channels``, ``swiglu``,
        ``img_size``, ``guidance`` (has a guidance embedding), ``input_projection``,
        and ``size`` (``"s"``, ``"b"``, ``"l"``, ``"g"`` or ``None`` when none fits).

    Raises:
        ValueError: a tensor that every DAV2 model has is absent.
    """
    needed = ["encoder.cls_token", "encoder.pos_embed", "head.scratch.layer1_rn.weight"] + [
        f"head.projects.{i}.weight" for i in range(4)
    ]
    absent = [k for k in needed if k not in state]
    if absent:
        raise ValueError(f"cannot tell the model size: {absent} missing ({describe(state)})")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.blocks\.(\d+)\.", k))}
    grid = state["encoder.pos_embed"].shape[1] - 1
    shape = {
        "embed_dim": int(state["encoder.cls_token"].shape[-1]),
        "depth": len(blocks),
        "features": int(state["head.scratch.layer1_rn.weight"].shape[0]),
        "out_channels": tuple(int(state[f"head.projects.{i}.weight"].shape[0]) for i in range(4)),
        "swiglu": _is_swiglu(state),
        "img_size": int(round(grid**0.5)) * 14,
        "guidance": "encoder.patch_embed_guidance.proj.weight" in state,
        "input_projection": any(k.startswith("head.input_projection.") for k in state),
    }
    shape["size"] = next(
        (
            name
            for name, c in CONFIGS.items()
            if (c.embed_dim, c.depth, c.features, c.out_channels, c.swiglu)
            == (shape["embed_dim"], shape["depth"], shape["features"], shape["out_channels"], shape["swiglu"])
        ),
        None,
    )
    return shape


def describe(state: dict[str, torch.Tensor]) -> str:
    """One line saying what a state dict looks like, for error messages."""
    keys = list(state)
    layout = detect_layout(keys)
    if layout == "unknown":
        if any(k.startswith("model.diffusion_model.") for k in keys) or "ldm_hparams" in keys:
            return "a DepthFM / Stable Diffusion checkpoint, not Depth Anything"
        sample = ", ".join(keys[:4])
        return f"a file of no known format ({len(keys)} keys, e.g. {sample})"
    names = {"dav2_official": "an official (pretrained.*, depth_head.*)",
             "amodal_official": "a released-Amodal-DAV2-layout (encoder.pretrained.*)", "ours": "an amodal-layout",
             "transformers": f"a {transformers_format.NAME} (backbone.*, neck.*)"}
    try:
        shape = infer_shape(to_ours(state))
    except ValueError:
        return f"{names[layout]} checkpoint with too few tensors to tell its size"
    size = f"ViT-{shape['size'].upper()}" if shape["size"] else (
        f"non-standard size (dim {shape['embed_dim']}, {shape['depth']} blocks, head {shape['features']})"
    )
    kind = "Amodal-DAV2" if shape["guidance"] or shape["input_projection"] else "Depth Anything V2"
    return f"{names[layout]} checkpoint of {kind}, {size}"


def load_strict(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    description: str | None = None,
    hint: str = "",
) -> None:
    """Load our-layout ``state`` into ``model``, or raise naming every mismatch.

    Args:
        model: the module to fill.
        state: tensors under our names.
        source: the file, for the message.
        description: what the file looks like (default: :func:`describe` of ``state``;
            pass the description of the file as read, before renaming).
        hint: a sentence added to the message (e.g. which class would fit).

    Raises:
        ValueError: missing, unexpected or mis-shaped keys.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mis_shaped:
        target = type(model).__name__
        size = getattr(model, "size_name", None)
        target += f" ({size})" if size else ""
        parts = [f"{source} does not fit {target}: it is {description or describe(state)}."]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mis_shaped)):
            if items:
                parts.append(f"{len(items)} {title} key(s): {_head(items)}")
        if hint:
            parts.append(hint)
        raise ValueError("\n".join(parts))
    model.load_state_dict(state, strict=True)


def _is_swiglu(state: dict[str, torch.Tensor]) -> bool:
    fc1, fc2 = state.get("encoder.blocks.0.mlp.fc1.weight"), state.get("encoder.blocks.0.mlp.fc2.weight")
    if fc1 is None:  # official names
        return "encoder.blocks.0.mlp.w12.weight" in state
    return fc2 is not None and fc1.shape[0] == 2 * fc2.shape[1]


def _head(items: list[str], n: int = 8) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", … (+{len(items) - n} more)" if len(items) > n else "")
