"""DINOv2 ViT encoders (S/B/L/G) on timm, with the features Depth Anything V2 taps.

Depth Anything V2 (DAV2) and Amodal-DAV2 (paper Sec. 4.1) use a DINOv2 ViT with patch
size 14, LayerScale and no register tokens. Four intermediate blocks are tapped; each
tap goes through the *final* LayerNorm and loses its class token before the DPT head.

Two details decide whether our numbers equal the official ones:

- **Position embedding.** The 37×37 grid learnt at 518² is resampled for other sizes with
  ``F.interpolate(grid, scale_factor=((h + 0.1) / 37, (w + 0.1) / 37), mode="bicubic",
  antialias=False)`` in float32, the class token's entry kept as is, and skipped only when
  the grid is unchanged. timm's own resampling (``size=(h, w)``, no offset) differs by
  about 3e-2 at, e.g., 364×518, so :class:`DINOv2` overrides it. Under ``torch.export``
  (the ONNX export) the same resampling is computed by :func:`dav2_pos_embed_traceable`:
  the export turns ``F.interpolate``'s scale factor into a constant of the example size
  (torch 2.14, without a guard), so a graph exported at one size would resample every
  other size wrongly; written as two small matrix products whose weights are computed
  from the actual grid, it follows the input's size.
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


def bicubic_matrix(out_len: int, in_len: int, ratio: torch.Tensor) -> torch.Tensor:
    """The linear map of PyTorch's 1-D bicubic resampling (``align_corners=False``, a = −0.75).

    Output ``i`` reads the input at ``x = (i + 0.5)·ratio − 0.5``: from ``floor(x) − 1`` to
    ``floor(x) + 2`` (indices clamped to the input), weighted by Keys' cubic kernel of
    ``t = x − floor(x)``, as ``upsample_bicubic2d`` does (``ratio`` = 1 / its scale factor).

    Args:
        out_len: output length (may be a symbolic size under ``torch.export``).
        in_len: input length.
        ratio: 0-dim float tensor, input step per output step.

    Returns:
        (out_len, in_len) float32 matrix ``A``; ``A @ v`` resamples a column ``v``.
    """
    a = -0.75

    def near(d):  # kernel on |d| ≤ 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # kernel on 1 ≤ |d| ≤ 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    x = (torch.arange(out_len, dtype=torch.float32, device=ratio.device) + 0.5) * ratio - 0.5
    start = torch.floor(x)
    t = x - start
    weights = torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=1)  # (out, 4)
    taps = torch.arange(-1, 3, device=ratio.device)
    index = (start.long()[:, None] + taps).clamp(0, in_len - 1)  # (out, 4)
    columns = torch.arange(in_len, device=ratio.device)
    return (weights[:, :, None] * (index[:, :, None] == columns).float()).sum(dim=1)  # (out, in)


def dav2_pos_embed_traceable(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """:func:`dav2_pos_embed` without Python branches or float sizes: one graph for every size.

    The same resampling as separable matrices (:func:`bicubic_matrix`) with the scale
    factors ``(h + 0.1) / n`` computed as tensors from the grid, and the "unchanged grid"
    case (``h = w = n``) chosen by a tensor condition that makes both matrices the identity.
    Equal to :func:`dav2_pos_embed` within float32 rounding (a few 1e-6).

    Args:
        pos_embed: (1, 1 + n², C), class-token entry first.
        grid: (h, w) patches of the input (symbolic under ``torch.export``).

    Returns:
        (1, 1 + h·w, C) in ``pos_embed``'s dtype.
    """
    h, w = grid
    side = math.isqrt(pos_embed.shape[1] - 1)
    dim = pos_embed.shape[-1]
    table = pos_embed.float()
    rows = torch.full((), h, dtype=torch.float32, device=table.device)  # sizes as tensors:
    cols = torch.full((), w, dtype=torch.float32, device=table.device)  # the graph computes with them
    unchanged = (rows == side) & (cols == side)
    one = torch.ones((), device=table.device)
    to_rows = bicubic_matrix(h, side, torch.where(unchanged, one, side / (rows + INTERPOLATE_OFFSET)))
    to_cols = bicubic_matrix(w, side, torch.where(unchanged, one, side / (cols + INTERPOLATE_OFFSET)))
    grid_embed = table[0, 1:].reshape(side, side, dim)
    grid_embed = torch.einsum("ia,abc,jb->ijc", to_rows, grid_embed, to_cols).reshape(1, h * w, dim)
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
        resample = dav2_pos_embed_traceable if torch.compiler.is_exporting() else dav2_pos_embed
        return self.pos_drop(x + resample(self.pos_embed, (h, w)))

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
