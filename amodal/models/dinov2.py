"""DINOv2 ViT encoders (S/B/L/G) on timm, with the features Depth Anything V2 taps.

Depth Anything V2 (DAV2) and Amodal-DAV2 (paper Sec. 4.1) use a DINOv2 ViT with patch
size 14, LayerScale and no register tokens. Four intermediate blocks are tapped; each
tap goes through the *final* LayerNorm and loses its class token before the DPT head.

Two details decide whether our numbers equal the official ones:

- **Position embedding.** The 37×37 grid learnt at 518² is resampled for other sizes with
  ``F.interpolate(grid, scale_factor=((h + 0.1) / 37, (w + 0.1) / 37), mode="bicubic",
  antialias=False)`` in float32, the class token's entry kept as is, and skipped only when
  the grid is unchanged. timm's own resampling (``size=(h, w)``, no offset) differs by
  about 3e-2 at, e.g., 364×518, so :class:`DINOv2` overrides it.
- **Attention.** timm's fused attention (``scaled_dot_product_attention``) differs from the
  official step-by-step softmax(q·kᵀ)·v by a few 1e-6 and is faster; it is on by default
  and :meth:`DINOv2.set_fused_attention` turns it off for bit-exact comparisons.

Amodal-DAV2 adds a second patch embedding, ``patch_embed_guidance``: Conv2d(2 → dim,
kernel 14, stride 14) on ``[2·M_a − 1, 2·D_o − 1]``, added to the RGB patch tokens before the
class token and position embedding (paper Eq. 1). It is zero-initialised, so at step 0
the encoder is exactly the pretrained DAV2 encoder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint
from timm.layers import PatchEmbed, SwiGLUPacked
from timm.models.vision_transformer import VisionTransformer

PATCH_SIZE = 14
# DAV2 adds 0.1 to the target grid size before computing the scale factor (as DINO did,
# to dodge floating-point rounding of the output size).
INTERPOLATE_OFFSET = 0.1


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of a DINOv2 encoder.

    Attributes:
        embed_dim: token width.
        depth: number of transformer blocks.
        num_heads: attention heads (DINOv2 uses 64 channels a head).
        taps: indices of the blocks whose outputs feed the DPT head.
        swiglu: SwiGLU MLP (ViT-G) instead of the GELU MLP.
        img_size: side of the square training resolution; sets the position-embedding grid.
    """

    embed_dim: int
    depth: int
    num_heads: int
    taps: tuple[int, ...]
    swiglu: bool = False
    img_size: int = 518


ENCODERS = {
    "s": EncoderConfig(384, 12, 6, (2, 5, 8, 11)),
    "b": EncoderConfig(768, 12, 12, (2, 5, 8, 11)),
    "l": EncoderConfig(1024, 24, 16, (4, 11, 17, 23)),
    "g": EncoderConfig(1536, 40, 24, (9, 19, 29, 39), swiglu=True),
}


def dav2_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resample a square position embedding to a ``(h, w)`` token grid, as DAV2 does.

    Args:
        pos_embed: (1, 1 + n², C), class-token entry first.
        grid: (h, w) patches of the input.

    Returns:
        (1, 1 + h·w, C) in ``pos_embed``'s dtype.
    """
    num_patches = pos_embed.shape[1] - 1
    h, w = grid
    if h * w == num_patches and h == w:
        return pos_embed
    dim = pos_embed.shape[-1]
    side = math.sqrt(num_patches)
    table = pos_embed.float()
    grid_embed = table[:, 1:].reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
    # scale_factor, not size: the official code maps coordinates with these exact factors
    scale = ((h + INTERPOLATE_OFFSET) / side, (w + INTERPOLATE_OFFSET) / side)
    grid_embed = F.interpolate(grid_embed, scale_factor=scale, mode="bicubic", antialias=False)
    if grid_embed.shape[-2:] != (h, w):
        raise ValueError(f"position embedding resampled to {tuple(grid_embed.shape[-2:])}, expected {grid}")
    grid_embed = grid_embed.permute(0, 2, 3, 1).reshape(1, h * w, dim)
    return torch.cat([table[:, :1], grid_embed], dim=1).to(pos_embed.dtype)


class DINOv2(VisionTransformer):
    """A DINOv2 ViT whose state dict is the official one (``mask_token`` aside).

    Args:
        config: an :class:`EncoderConfig` (see ``ENCODERS``).
        guidance_channels: input channels of ``patch_embed_guidance``; 0 for plain DAV2,
            2 for Amodal-DAV2 (amodal mask, observed depth).
        fused_attn: use ``scaled_dot_product_attention`` (fast) or the step-by-step
            attention of the official code (bit-exact).
    """

    def __init__(self, config: EncoderConfig, guidance_channels: int = 0, fused_attn: bool = True):
        mlp = dict(mlp_layer=_official_swiglu, act_layer=nn.SiLU) if config.swiglu else {}
        super().__init__(
            img_size=config.img_size,
            patch_size=PATCH_SIZE,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            init_values=1.0,  # DAV2's DINOv2 builds LayerScale with 1.0
            num_classes=0,
            dynamic_img_size=True,
            **mlp,
        )
        self.config = config
        self.patch_embed_guidance = None
        if guidance_channels:
            self.patch_embed_guidance = PatchEmbed(
                img_size=config.img_size,
                patch_size=PATCH_SIZE,
                in_chans=guidance_channels,
                embed_dim=config.embed_dim,
                strict_img_size=False,
                output_fmt="NHWC",
                flatten=False,
            )
            nn.init.zeros_(self.patch_embed_guidance.proj.weight)
            nn.init.zeros_(self.patch_embed_guidance.proj.bias)
        self.set_fused_attention(fused_attn)
        self.gradient_checkpointing = False

    def set_fused_attention(self, enabled: bool) -> None:
        """Switch every block between SDPA (``True``) and step-by-step attention."""
        for block in self.blocks:
            block.attn.fused_attn = bool(enabled)

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, h, w, C) patch tokens → (B, 1 + h·w, C) with class token and positions
        B, h, w, C = x.shape
        x = torch.cat([self.cls_token.expand(B, -1, -1), x.reshape(B, h * w, C)], dim=1)
        return self.pos_drop(x + dav2_pos_embed(self.pos_embed, (h, w)))

    def forward_taps(self, image: torch.Tensor, guidance: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Token features of the tapped blocks, as the DPT head takes them.

        Args:
            image: (B, 3, H, W), already ImageNet-normalised; H, W multiples of 14.
            guidance: (B, guidance_channels, H, W) in [-1, 1], required iff the encoder
                has a guidance embedding.

        Returns:
            one (B, h·w, C) tensor per tap, final LayerNorm applied, class token dropped
            (h = H / 14, w = W / 14).
        """
        _check_patch_multiple(image)
        x = self.patch_embed(image)  # (B, h, w, C)
        if self.patch_embed_guidance is not None:
            if guidance is None:
                raise ValueError("this encoder has a guidance embedding: pass guidance (B, 2, H, W)")
            if guidance.shape[-2:] != image.shape[-2:]:
                raise ValueError(f"guidance {tuple(guidance.shape)} and image {tuple(image.shape)} differ in size")
            x = x + self.patch_embed_guidance(guidance)
        elif guidance is not None:
            raise ValueError("this encoder has no guidance embedding, but guidance was given")
        x = self._pos_embed(x)
        taps = set(self.config.taps)
        features = []
        for index, block in enumerate(self.blocks[: max(taps) + 1]):
            if self.gradient_checkpointing and torch.is_grad_enabled():
                # activation checkpointing: keep only each block's input, recompute the rest
                # in the backward pass (ViT-L/G training fits in memory at a ~30% time cost)
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
            if index in taps:
                features.append(self.norm(x)[:, 1:])
        return features


def _official_swiglu(in_features: int, hidden_features: int, **kwargs) -> nn.Module:
    """DINOv2's ``SwiGLUFFNFused`` on timm's packed SwiGLU (``fc1`` = official ``w12``).

    The official layer takes the GELU MLP's width (4·C) and keeps 2/3 of it, rounded up
    to a multiple of 8: 4096 for ViT-G's C = 1536, 88 for C = 32. A fixed ``mlp_ratio``
    matches at ViT-G only, so small SwiGLU test models would get other shapes.
    """
    hidden = (int(hidden_features * 2 / 3) + 7) // 8 * 8
    return SwiGLUPacked(in_features, 2 * hidden, **kwargs)


def _check_patch_multiple(image: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[-2] % PATCH_SIZE or image.shape[-1] % PATCH_SIZE:
        raise ValueError(
            f"expected (B, C, H, W) with H and W multiples of {PATCH_SIZE}, got {tuple(image.shape)}"
        )
