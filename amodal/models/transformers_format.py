"""Depth Anything in the format of the ``transformers`` library: config.json → our config, its keys → ours.

The hub repositories ``depth-anything/Depth-Anything-V2-{Small,Base,Large}-hf`` hold the official
DAV2 weights converted for ``transformers``' ``DepthAnythingForDepthEstimation``: a folder with
``config.json`` and ``model.safetensors``. This module reads that format with ``json`` and
``safetensors`` alone and renames it to ours; ``transformers`` itself is never imported (it is a
test dependency: the parity test runs its model beside ours).

**config.json → DAV2Config.** ``model_type`` must be ``"depth_anything"`` and
``depth_estimation_type`` ``"relative"``: a *metric* model ends in a sigmoid times ``max_depth``
(metres), not the relative disparity DAV2 gives, and is refused. The DINOv2 backbone is
``backbone_config`` (``model_type`` ``"dinov2"``): ``hidden_size``, ``num_hidden_layers``,
``num_attention_heads``, ``image_size``, ``use_swiglu_ffn`` give the encoder. Its taps are *stages*
(``out_indices``, or ``out_features`` ``"stageN"``): stage 0 is the patch embedding and stage
``N`` the output of block ``N − 1``, so ``[3, 6, 9, 12]`` (S, B) are our taps ``(2, 5, 8, 11)`` and
``[5, 12, 18, 24]`` (L) are ``(4, 11, 17, 23)``. ``fusion_hidden_size`` is our ``features``,
``neck_hidden_sizes`` our ``out_channels``. The rest is fixed by the network and checked:
patch 14, 3 channels, MLP ratio 4, GELU, LayerNorm eps 1e-6, qkv bias, final LayerNorm on the
taps, reassemble factors ``[4, 2, 1, 0.5]`` from ``reassemble_hidden_size`` = ``hidden_size``, a
head of width 32 reading the last fusion output. The hub's configs leave most fields out; a
missing field takes ``transformers``' default (:data:`DEPTH_ANYTHING_DEFAULTS`, :data:`DINOV2_DEFAULTS`).

**Keys.** ``backbone.`` is the encoder, ``neck.`` + ``head.`` the DPT head:

=====================================================  ===========================================
transformers                                           ours
=====================================================  ===========================================
``backbone.embeddings.cls_token``, ``position_embeddings``,  ``encoder.cls_token``, ``pos_embed``,
``patch_embeddings.projection``                         ``patch_embed.proj`` (``mask_token`` dropped)
``backbone.encoder.layer.N.attention.attention.``       ``encoder.blocks.N.attn.qkv``: the three
``{query,key,value}``                                    concatenated, q then k then v
``….attention.output.dense``, ``layer_scale{1,2}.lambda1``  ``attn.proj``, ``ls{1,2}.gamma``
``….norm{1,2}``, ``mlp.fc{1,2}`` (SwiGLU: ``mlp.weights_in``,  the same names (SwiGLU: ``mlp.fc1``,
``weights_out``)                                         ``mlp.fc2``)
``backbone.layernorm``                                  ``encoder.norm``
``neck.reassemble_stage.layers.i.{projection,resize}``  ``head.projects.i``, ``head.resize_layers.i``
``neck.convs.i``                                        ``head.scratch.layer{i+1}_rn``
``neck.fusion_stage.layers.j`` (``projection``,         ``head.scratch.refinenet{4−j}`` (``out_conv``,
``residual_layer{1,2}.convolution{1,2}``)                ``resConfUnit{1,2}.conv{1,2}``)
``head.conv1``, ``head.conv2``, ``head.conv3``          ``head.scratch.output_conv1``, ``output_conv2.0``, ``output_conv2.2``
=====================================================  ===========================================

The fusion runs coarse to fine, so its first layer is DPT's ``refinenet4``. ``transformers`` 5 names
its attention modules ``q_proj`` … ``o_proj`` (SwiGLU ``gate_proj`` / ``up_proj`` / ``down_proj``) in
memory but writes the names above (its conversion table renames them on loading); both are read.

**Output.** Its relative head returns ``ReLU(conv3(·)) · max_depth`` (``max_depth`` 1 when absent).
For ``m > 0``, ``ReLU(x) · m = ReLU(m · x)``, so ``m`` is folded into ``conv3`` and our forward returns
exactly its ``predicted_depth``. One difference lies outside the weights: at sizes other than the
trained 518², ``transformers`` resamples the position embedding with ``interpolate(size=(h, w))``,
the official code with ``scale_factor=((h + 0.1) / 37, (w + 0.1) / 37)`` (:mod:`amodal.models.dinov2`).
We keep the official formula: a ``-hf`` checkpoint gives the official DAV2's depth at every size,
and ``transformers``' wherever the token grid is the trained one.
"""
from __future__ import annotations

import re
from typing import Any

import torch

from amodal.models.configs import DAV2Config, standard_size

MODEL_TYPE = "depth_anything"
ARCHITECTURE = "DepthAnythingForDepthEstimation"
NAME = f"transformers {ARCHITECTURE}"

# transformers 5.25's defaults for the fields a config.json may leave out
# (configuration_depth_anything.py, configuration_dinov2.py).
DEPTH_ANYTHING_DEFAULTS = {
    "patch_size": 14, "reassemble_hidden_size": 384, "reassemble_factors": [4, 2, 1, 0.5],
    "neck_hidden_sizes": [48, 96, 192, 384], "fusion_hidden_size": 64, "head_in_index": -1,
    "head_hidden_size": 32, "depth_estimation_type": "relative", "max_depth": 1,
}
DINOV2_DEFAULTS = {
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "mlp_ratio": 4, "hidden_act": "gelu",
    "layer_norm_eps": 1e-6, "image_size": 224, "patch_size": 14, "num_channels": 3, "qkv_bias": True,
    "use_swiglu_ffn": False, "apply_layernorm": True,
}
# DepthAnythingConfig's backbone when config.json names none
DEFAULT_BACKBONE = {"model_type": "dinov2", "image_size": 518, "hidden_size": 384, "num_attention_heads": 6,
                    "out_indices": [9, 10, 11, 12]}

# (pattern, our name): a replacement string, or a function of the match
_RENAMES = [(re.compile(pattern), replacement) for pattern, replacement in (
    (r"^backbone\.embeddings\.cls_token$", "encoder.cls_token"),
    (r"^backbone\.embeddings\.position_embeddings$", "encoder.pos_embed"),
    (r"^backbone\.embeddings\.patch_embeddings\.projection\.", "encoder.patch_embed.proj."),
    (r"^backbone\.layernorm\.", "encoder.norm."),
    (r"^backbone\.encoder\.layer\.(\d+)\.attention\.(?:output\.dense|o_proj)\.", r"encoder.blocks.\1.attn.proj."),
    (r"^backbone\.encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1$", r"encoder.blocks.\1.ls\2.gamma"),
    (r"^backbone\.encoder\.layer\.(\d+)\.(norm[12])\.", r"encoder.blocks.\1.\2."),
    (r"^backbone\.encoder\.layer\.(\d+)\.mlp\.(?:fc1|weights_in)\.", r"encoder.blocks.\1.mlp.fc1."),
    (r"^backbone\.encoder\.layer\.(\d+)\.mlp\.(?:fc2|weights_out|down_proj)\.", r"encoder.blocks.\1.mlp.fc2."),
    (r"^neck\.reassemble_stage\.layers\.(\d)\.projection\.", r"head.projects.\1."),
    (r"^neck\.reassemble_stage\.layers\.(\d)\.resize\.", r"head.resize_layers.\1."),
    (r"^neck\.convs\.(\d)\.", lambda m: f"head.scratch.layer{int(m[1]) + 1}_rn."),
    # the fusion runs coarse to fine: its layer j is DPT's refinenet 4 − j
    (r"^neck\.fusion_stage\.layers\.(\d)\.projection\.", lambda m: f"head.scratch.refinenet{4 - int(m[1])}.out_conv."),
    (r"^neck\.fusion_stage\.layers\.(\d)\.residual_layer([12])\.convolution([12])\.",
     lambda m: f"head.scratch.refinenet{4 - int(m[1])}.resConfUnit{m[2]}.conv{m[3]}."),
    (r"^head\.conv1\.", "head.scratch.output_conv1."),
    (r"^head\.conv2\.", "head.scratch.output_conv2.0."),
    (r"^head\.conv3\.", "head.scratch.output_conv2.2."),
)]
# tensors split in the file and one in our network: (part names in order) → our name
_ATTENTION = re.compile(r"^backbone\.encoder\.layer\.(\d+)\.attention\.(attention\.query|attention\.key|attention\.value|"
                        r"q_proj|k_proj|v_proj)\.(weight|bias)$")
_SWIGLU_HALVES = re.compile(r"^backbone\.encoder\.layer\.(\d+)\.mlp\.(gate_proj|up_proj)\.(weight|bias)$")
_PART_ORDER = {"attention.query": 0, "q_proj": 0, "attention.key": 1, "k_proj": 1, "attention.value": 2, "v_proj": 2,
               "gate_proj": 0, "up_proj": 1}


def is_transformers_config(config: Any) -> bool:
    """``config`` is a ``transformers`` config.json (every one names its ``model_type``)."""
    return isinstance(config, dict) and isinstance(config.get("model_type"), str)


def is_transformers_state(keys) -> bool:
    """The keys are those of a ``DepthAnythingForDepthEstimation`` (``backbone.embeddings.*``, ``neck.*``)."""
    keys = list(keys)
    return any(k.startswith("backbone.embeddings.") for k in keys) and any(k.startswith("neck.") for k in keys)


def describe_config(config: dict) -> str:
    """One line saying what a ``transformers`` config.json is, for messages (never raises)."""
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    if model_type != MODEL_TYPE:
        named = f", {', '.join(map(str, architectures))}" if isinstance(architectures, list) and architectures else ""
        return f"a transformers checkpoint of another model (model_type {model_type!r}{named}), not Depth Anything"
    kind = config.get("depth_estimation_type", DEPTH_ANYTHING_DEFAULTS["depth_estimation_type"])
    if kind != "relative":
        return (f"a {NAME} checkpoint of a {kind} model (depth_estimation_type {kind!r}, "
                f"max_depth {config.get('max_depth')!r})")
    try:
        shape = to_dav2_config(config, "config.json")
    except ValueError:
        return f"a {NAME} checkpoint of relative depth whose config this network cannot take"
    size = standard_size(shape)
    size = f"ViT-{size.upper()}" if size else f"dim {shape.embed_dim}, {shape.depth} blocks, taps {list(shape.taps)}"
    return f"a {NAME} checkpoint of relative depth, {size}"


def to_dav2_config(config: dict, source: str) -> DAV2Config:
    """Our :class:`DAV2Config` for a ``transformers`` Depth Anything config.json.

    Args:
        config: the parsed config.json.
        source: the file, for messages.

    Raises:
        ValueError: another model, a metric model, or a field our network cannot take (named).
    """
    if not is_transformers_config(config) or config["model_type"] != MODEL_TYPE:
        raise ValueError(f"{source} is {describe_config(config) if is_transformers_config(config) else 'not a transformers config'}: "
                         f"DepthAnythingV2 reads a {NAME} (model_type {MODEL_TYPE!r})")
    top = {**DEPTH_ANYTHING_DEFAULTS, **config}
    if top["depth_estimation_type"] == "metric":
        raise ValueError(
            f"{source} is {describe_config(config)}: it predicts metric depth (a sigmoid times max_depth), "
            "not the relative disparity of Depth Anything V2; use a relative model "
            "(depth-anything/Depth-Anything-V2-{Small,Base,Large}-hf)")
    if top["depth_estimation_type"] != "relative":
        raise ValueError(f"{source}: depth_estimation_type {top['depth_estimation_type']!r} is neither 'relative' "
                         "nor 'metric'")
    backbone = config.get("backbone_config")
    if backbone is None:
        if config.get("backbone"):
            raise ValueError(f"{source}: its backbone is named ({config['backbone']!r}), not described by a "
                             "backbone_config, so its shape cannot be read")
        backbone = DEFAULT_BACKBONE
    if not isinstance(backbone, dict) or backbone.get("model_type") != "dinov2":
        kind = backbone.get("model_type") if isinstance(backbone, dict) else type(backbone).__name__
        raise ValueError(f"{source}: its backbone is {kind!r}, not the DINOv2 of Depth Anything (model_type 'dinov2')")
    vit = {**DINOV2_DEFAULTS, **backbone}
    if isinstance(vit["image_size"], list) and len(set(vit["image_size"])) == 1:
        vit["image_size"] = vit["image_size"][0]  # [518, 518]: a square, as DINOv2's grid is
    numbers = [f"{name} {vit[name]!r}" for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "image_size")
               if isinstance(vit[name], bool) or not isinstance(vit[name], int) or vit[name] < 1]
    if numbers:
        raise ValueError(f"{source}: backbone_config needs whole numbers ≥ 1 where it has {', '.join(numbers)}")
    fixed = [("patch_size", top, 14), ("patch_size", vit, 14), ("num_channels", vit, 3), ("mlp_ratio", vit, 4),
             ("layer_norm_eps", vit, 1e-6), ("qkv_bias", vit, True), ("apply_layernorm", vit, True),
             ("reassemble_factors", top, [4, 2, 1, 0.5]), ("head_hidden_size", top, 32),
             ("reassemble_hidden_size", top, vit["hidden_size"])]
    if not vit["use_swiglu_ffn"]:
        fixed.append(("hidden_act", vit, "gelu"))
    wrong = [f"{name} {fields[name]!r} (this network has {value!r})" for name, fields, value in fixed
             if fields[name] != value]
    if top["head_in_index"] not in (-1, 3):
        wrong.append(f"head_in_index {top['head_in_index']!r} (this network reads the last fusion output)")
    max_depth = top["max_depth"] if top["max_depth"] is not None else 1
    if isinstance(max_depth, bool) or not isinstance(max_depth, (int, float)) or max_depth <= 0:
        wrong.append(f"max_depth {top['max_depth']!r} (must be a positive number)")
    if wrong:
        raise ValueError(f"{source}: a {NAME} this network cannot take: {'; '.join(wrong)}")
    try:
        return DAV2Config.from_dict({
            "embed_dim": vit["hidden_size"], "depth": vit["num_hidden_layers"], "num_heads": vit["num_attention_heads"],
            "taps": _taps(vit, source), "features": top["fusion_hidden_size"], "out_channels": top["neck_hidden_sizes"],
            "swiglu": vit["use_swiglu_ffn"], "img_size": vit["image_size"]})
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def _taps(vit: dict, source: str) -> tuple[int, ...]:
    """Block indices from the backbone's stages (stage 0 = the patch embedding, stage N = block N − 1)."""
    stages = vit["num_hidden_layers"] + 1
    if vit.get("out_indices") is not None:
        indices = vit["out_indices"]
        if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
            raise ValueError(f"{source}: backbone out_indices must be a list of whole numbers, got {indices!r}")
        indices = [i + stages if i < 0 else i for i in indices]
    elif vit.get("out_features") is not None:
        names = vit["out_features"]
        found = [re.fullmatch(r"stage(\d+)", n) if isinstance(n, str) else None for n in names] if isinstance(names, list) else []
        if not isinstance(names, list) or not names or not all(found):
            raise ValueError(f"{source}: backbone out_features must name stages ('stage9', ...), got {names!r}")
        indices = [int(m.group(1)) for m in found]
    else:
        indices = [stages - 1]  # transformers' default: the last stage only
    if len(set(indices)) != 4 or len(indices) != 4 or not all(1 <= i < stages for i in indices):
        raise ValueError(f"{source}: backbone stages {indices} must be four of 1 … {stages - 1} (stage 0, the patch "
                         "embedding, is no block output)")
    return tuple(sorted(i - 1 for i in indices))


DROPPED = ("backbone.embeddings.mask_token",)  # DINOv2's masked pre-training only, never used for depth


def our_key(key: str) -> tuple[str, int | None] | None:
    """Our name for one ``DepthAnythingForDepthEstimation`` key.

    Returns:
        ``(our name, None)``; ``(our name, i)`` for part ``i`` of a tensor we hold whole (query, key,
        value → ``attn.qkv``, rows in that order; SwiGLU gate, up → ``mlp.fc1``); ``None`` for a
        key we drop (:data:`DROPPED`). A key that fits no rule comes back as it is, so that strict
        loading names it.
    """
    if key in DROPPED:
        return None
    split = _ATTENTION.match(key) or _SWIGLU_HALVES.match(key)
    if split:
        layer, part, kind = split.groups()
        name = "attn.qkv" if split.re is _ATTENTION else "mlp.fc1"
        return f"encoder.blocks.{layer}.{name}.{kind}", _PART_ORDER[part]
    for pattern, replacement in _RENAMES:
        if pattern.search(key):
            return pattern.sub(replacement, key, count=1), None
    return key, None


def key_map(keys) -> dict[str, tuple[str, int | None]]:
    """:func:`our_key` of every key but the dropped ones: ``{their key: (our name, part or None)}``."""
    return {key: found for key in keys if (found := our_key(key)) is not None}


def to_ours(state: dict[str, torch.Tensor], config: dict | None = None) -> dict[str, torch.Tensor]:
    """Rename a ``DepthAnythingForDepthEstimation`` state dict to our module names (:func:`key_map`).

    Args:
        state: the tensors of its ``model.safetensors``.
        config: its config.json; its ``max_depth`` is folded into the last convolution (none: 1).

    Returns:
        our names; a key that fits no rule is kept as it is, so that strict loading names it.
    """
    out, parts = {}, {}
    for key, (name, part) in key_map(state).items():
        if part is None:
            out[name] = state[key]
        else:
            parts.setdefault(name, {})[part] = state[key]
    for name, pieces in parts.items():
        if sorted(pieces) == list(range(2 if ".mlp." in name else 3)):
            out[name] = torch.cat([pieces[i] for i in sorted(pieces)])
        else:  # some part missing: keep what there is under its own name, for strict loading to name
            out.update({f"{name}[part {i}]": piece for i, piece in pieces.items()})
    scale = (config or {}).get("max_depth", DEPTH_ANYTHING_DEFAULTS["max_depth"])
    if scale not in (None, 1) and "head.scratch.output_conv2.2.weight" in out:
        for key in ("head.scratch.output_conv2.2.weight", "head.scratch.output_conv2.2.bias"):
            if key in out:
                out[key] = out[key] * float(scale)  # ReLU(x)·m = ReLU(m·x), m > 0 (checked by to_dav2_config)
    return out
