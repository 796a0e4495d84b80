"""The state-dict keys and shapes of the official checkpoints, written down by hand.

Test files in the official layouts are built from this list, never from our own
converter, so that a naming mistake shared by our reader and writer cannot pass.
Every entry was read off the official module definitions:

Depth Anything V2 (github.com/DepthAnything/Depth-Anything-V2), ``depth_anything_v2/``:

- ``dpt.py``: ``DepthAnythingV2`` holds ``pretrained`` (DINOv2) and ``depth_head`` (DPTHead);
  ``model_configs`` in ``run.py`` give ``features`` / ``out_channels`` per size. DPTHead:
  ``projects`` (four 1×1 convs), ``resize_layers`` (ConvTranspose k4 s4, ConvTranspose
  k2 s2, Identity, Conv k3 s2), ``scratch`` from ``util/blocks._make_scratch`` (four
  bias-free 3×3 ``layer{i}_rn``), four ``refinenet{i}`` ``FeatureFusionBlock`` s (``out_conv``
  1×1, ``resConfUnit1`` / ``resConfUnit2`` each ``conv1`` / ``conv2`` 3×3 with bias; no
  BatchNorm since ``use_bn=False``), ``output_conv1`` 3×3 to features/2, ``output_conv2`` =
  Sequential(Conv3×3 → 32, ReLU, Conv1×1 → 1, ReLU, Identity): weights at indices 0 and 2.
  ``use_clstoken=False``: no ``readout_projects``; ``stem_transpose`` is ``None``.
- ``dinov2.py``: ``DINOv2(model_name)`` builds ``img_size=518, patch_size=14,
  init_values=1.0, block_chunks=0, num_register_tokens=0``, ``ffn_layer="mlp"`` except
  ``"swiglufused"`` for vitg; ``qkv_bias=proj_bias=ffn_bias=True``, ``mlp_ratio=4``.
  Parameters: ``cls_token`` (1, 1, C), ``pos_embed`` (1, 37² + 1, C) = (1, 1370, C),
  ``mask_token`` (1, C), no ``register_tokens`` (0 registers → ``None``), blocks listed
  flat (``block_chunks=0`` → ``blocks.{i}``, not ``blocks.0.{i}``), final ``norm``,
  ``head`` an Identity.
- ``dinov2_layers``: ``PatchEmbed.proj`` Conv(3 → C, 14, 14) and an Identity norm;
  ``Block``: ``norm1``, ``attn.qkv`` (3C, C), ``attn.proj``, ``ls1.gamma``, ``norm2``, ``mlp``,
  ``ls2.gamma``; ``Mlp``: ``fc1`` (4C, C), ``fc2`` (C, 4C); ``SwiGLUFFNFused``: hidden
  ``(int(4C · 2/3) + 7) // 8 · 8``, ``w12`` (2·hidden, C), ``w3`` (C, hidden).

Amodal Depth Anything (github.com/zhyever/Amodal-Depth-Anything),
``src/models/amodalsynthdrive/``: ``dav2.py`` ``AmodalDAv2`` keeps the DAV2 network as
``self.encoder``, so every key gains ``encoder.`` (``pixel_mean`` / ``pixel_std`` are
non-persistent buffers, not in the file). ``depth_anything_v2/dinov2.py`` adds
``patch_embed_guidance`` = PatchEmbed(2 → C) for ``guide_type="mask+observation"``;
``depth_anything_v2/dpt.py`` adds ``input_projection.{i}`` = Sequential(Conv3×3 c → c,
LayerNorm([c]) with ``weight`` / ``bias``, ReLU) and ends ``output_conv2`` in a Sigmoid
(still weights at 0 and 2). The released ViT sizes are s, b and l.
"""
from __future__ import annotations

import torch

PATCH = 14
OFFICIAL_GRID = 518 // PATCH  # 37

# (embed_dim, depth, features, out_channels, swiglu) per official size: dinov2.py's
# vit_small / vit_base / vit_large / vit_giant2 and run.py's model_configs.
OFFICIAL_SIZES = {
    "s": (384, 12, 64, (48, 96, 192, 384), False),
    "b": (768, 12, 128, (96, 192, 384, 768), False),
    "l": (1024, 24, 256, (256, 512, 1024, 1024), False),
    "g": (1536, 40, 384, (1536, 1536, 1536, 1536), True),
}


def official_shapes(
    embed_dim: int,
    depth: int,
    features: int,
    out_channels: tuple[int, int, int, int],
    swiglu: bool = False,
    grid: int = OFFICIAL_GRID,
    amodal: bool = False,
) -> dict[str, tuple[int, ...]]:
    """Key → shape of an official file (DAV2 ``.pth``, or released Amodal-DAV2 when ``amodal``)."""
    C = embed_dim
    encoder = {
        "cls_token": (1, 1, C),
        "pos_embed": (1, grid * grid + 1, C),
        "mask_token": (1, C),
        "patch_embed.proj.weight": (C, 3, PATCH, PATCH),
        "patch_embed.proj.bias": (C,),
        "norm.weight": (C,),
        "norm.bias": (C,),
    }
    if amodal:
        encoder["patch_embed_guidance.proj.weight"] = (C, 2, PATCH, PATCH)
        encoder["patch_embed_guidance.proj.bias"] = (C,)
    hidden = (int(4 * C * 2 / 3) + 7) // 8 * 8 if swiglu else 4 * C
    mlp = (
        {"mlp.w12.weight": (2 * hidden, C), "mlp.w12.bias": (2 * hidden,), "mlp.w3.weight": (C, hidden), "mlp.w3.bias": (C,)}
        if swiglu
        else {"mlp.fc1.weight": (hidden, C), "mlp.fc1.bias": (hidden,), "mlp.fc2.weight": (C, hidden), "mlp.fc2.bias": (C,)}
    )
    block = {
        "norm1.weight": (C,), "norm1.bias": (C,),
        "attn.qkv.weight": (3 * C, C), "attn.qkv.bias": (3 * C,),
        "attn.proj.weight": (C, C), "attn.proj.bias": (C,),
        "ls1.gamma": (C,),
        "norm2.weight": (C,), "norm2.bias": (C,),
        **mlp,
        "ls2.gamma": (C,),
    }
    for i in range(depth):
        encoder.update({f"blocks.{i}.{name}": shape for name, shape in block.items()})

    c, f = out_channels, features
    head = {}
    for i in range(4):
        head[f"projects.{i}.weight"] = (c[i], C, 1, 1)
        head[f"projects.{i}.bias"] = (c[i],)
    # ConvTranspose2d weights are (in, out, k, k); Conv2d (out, in, k, k)
    head.update({
        "resize_layers.0.weight": (c[0], c[0], 4, 4), "resize_layers.0.bias": (c[0],),
        "resize_layers.1.weight": (c[1], c[1], 2, 2), "resize_layers.1.bias": (c[1],),
        "resize_layers.3.weight": (c[3], c[3], 3, 3), "resize_layers.3.bias": (c[3],),
    })
    if amodal:
        for i in range(4):
            head[f"input_projection.{i}.0.weight"] = (c[i], c[i], 3, 3)
            head[f"input_projection.{i}.0.bias"] = (c[i],)
            head[f"input_projection.{i}.1.weight"] = (c[i],)
            head[f"input_projection.{i}.1.bias"] = (c[i],)
    for i in range(4):
        head[f"scratch.layer{i + 1}_rn.weight"] = (f, c[i], 3, 3)
    for i in range(1, 5):
        r = f"scratch.refinenet{i}."
        head[r + "out_conv.weight"], head[r + "out_conv.bias"] = (f, f, 1, 1), (f,)
        for unit in ("resConfUnit1", "resConfUnit2"):
            for conv in ("conv1", "conv2"):
                head[f"{r}{unit}.{conv}.weight"], head[f"{r}{unit}.{conv}.bias"] = (f, f, 3, 3), (f,)
    head.update({
        "scratch.output_conv1.weight": (f // 2, f, 3, 3), "scratch.output_conv1.bias": (f // 2,),
        "scratch.output_conv2.0.weight": (32, f // 2, 3, 3), "scratch.output_conv2.0.bias": (32,),
        "scratch.output_conv2.2.weight": (1, 32, 1, 1), "scratch.output_conv2.2.bias": (1,),
    })

    prefix = ("encoder.pretrained.", "encoder.depth_head.") if amodal else ("pretrained.", "depth_head.")
    return {**{prefix[0] + k: v for k, v in encoder.items()}, **{prefix[1] + k: v for k, v in head.items()}}


def official_size_shapes(size: str, amodal: bool = False) -> dict[str, tuple[int, ...]]:
    """:func:`official_shapes` of a released size, ``"s"`` / ``"b"`` / ``"l"`` / ``"g"``."""
    return official_shapes(*OFFICIAL_SIZES[size], amodal=amodal)


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Random tensors of the given shapes (``device="meta"``: shapes only, no memory)."""
    generator = torch.Generator().manual_seed(seed)
    if device == "meta":
        return {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
    return {k: torch.randn(shape, generator=generator) * 0.1 for k, shape in shapes.items()}


# A few entries spelled out by hand from the definitions above, to check the generator.
KNOWN = {
    "l": {
        "pretrained.pos_embed": (1, 1370, 1024),
        "pretrained.mask_token": (1, 1024),
        "pretrained.patch_embed.proj.weight": (1024, 3, 14, 14),
        "pretrained.blocks.23.attn.qkv.weight": (3072, 1024),
        "pretrained.blocks.23.mlp.fc1.weight": (4096, 1024),
        "depth_head.projects.3.weight": (1024, 1024, 1, 1),
        "depth_head.resize_layers.0.weight": (256, 256, 4, 4),
        "depth_head.scratch.layer4_rn.weight": (256, 1024, 3, 3),
        "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight": (256, 256, 3, 3),
        "depth_head.scratch.output_conv1.weight": (128, 256, 3, 3),
        "depth_head.scratch.output_conv2.2.weight": (1, 32, 1, 1),
    },
    "g": {
        "pretrained.blocks.39.mlp.w12.weight": (8192, 1536),
        "pretrained.blocks.39.mlp.w3.weight": (1536, 4096),
    },
}
# Keys per file, counted by hand: encoder 7 + 14 per block, head 8 + 6 + 4 + 4·10 + 2 + 4 = 64;
# the released Amodal-DAV2 adds 2 (guidance) + 16 (input projections).
KEY_COUNTS = {("s", False): 7 + 14 * 12 + 64, ("l", False): 7 + 14 * 24 + 64, ("l", True): 7 + 14 * 24 + 64 + 18}
# Names that must not appear: DINOv2 built with 0 registers, block_chunks=0, use_clstoken=False.
ABSENT = ("pretrained.register_tokens", "pretrained.blocks.0.0.attn.qkv.weight", "depth_head.readout_projects.0.0.weight")
