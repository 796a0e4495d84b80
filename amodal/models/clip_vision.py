r"""CLIP's image tower (ViT-L/14), the image embedding pix2gestalt is conditioned on.

pix2gestalt feeds the occluded image to CLIP's vision transformer (Radford et al. 2021)
and, through a learned linear map, uses the 768-d embedding as the UNet's
cross-attention context. Its ``FrozenCLIPImageEmbedder`` (``ldm/modules/encoders/
modules.py``) loads OpenAI's ``clip`` ViT-L/14, deletes the text transformer, and
embeds an image in [-1, 1] so:

1. resize to 224² with bicubic interpolation, ``align_corners=True``, no antialiasing
   (``kornia.geometry.resize``, which calls ``F.interpolate`` and returns an input that
   already has the size untouched);
2. ``(x + 1) / 2``, then CLIP's mean ``(0.48145466, 0.4578275, 0.40821073)`` and std
   ``(0.26862954, 0.26130258, 0.27577711)``;
3. ``encode_image`` in float32.

The tower (``VisionTransformer`` in OpenAI's ``clip/model.py``): a bias-free patch
convolution (patch 14), a class token prepended, learned position embeddings
(``(224/14)² + 1 = 257``), ``ln_pre``, 24 pre-LayerNorm residual blocks (multi-head
attention with a fused ``in_proj``, 16 heads = width / 64; an MLP ``c_fc`` → QuickGELU
``x·σ(1.702x)`` → ``c_proj`` of 4× width), ``ln_post`` on the class token, and a bias-free
projection ``proj`` (1024 → 768). LayerNorms use eps 1e-5. As ``clip.build_model`` does,
the sizes are read off the weights: width from ``conv1``, depth from the number of
``in_proj_weight`` s, patch from the kernel, the grid from the position embeddings, and the
output size from ``proj``.

Parameter names are OpenAI's without the ``visual.`` prefix, so a checkpoint's
``cond_stage_model.model.visual.*`` loads with the prefix stripped and nothing renamed.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class QuickGELU(nn.Module):
    """CLIP's activation ``x·σ(1.702·x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))`` on ``(B, N, D)``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    # Holds the blocks as ``resblocks`` so that parameter names are OpenAI's.
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])


class CLIPVisionTower(nn.Module):
    """CLIP's ViT image encoder: ``(B, 3, S, S)`` CLIP-normalised pixels → ``(B, output_dim)``.

    Args:
        width: token width (1024 for ViT-L/14).
        layers: number of residual blocks (24).
        patch_size: patch side (14).
        image_size: input side ``S`` (224).
        output_dim: size of the projected embedding (768).
        heads: attention heads; CLIP's rule ``width // 64`` when not given.
    """

    def __init__(self, width: int = 1024, layers: int = 24, patch_size: int = 14, image_size: int = 224,
                 output_dim: int = 768, heads: int | None = None):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        heads = heads or width // 64
        if heads < 1 or width % heads:
            raise ValueError(f"width {width} does not split into {heads} heads")
        self.image_size, self.patch_size = image_size, patch_size
        grid = image_size // patch_size
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def output_dim(self) -> int:
        return self.proj.shape[1]

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], source: str = "checkpoint") -> "CLIPVisionTower":
        """Build the tower the weights describe (as ``clip.build_model`` reads them) and load them strictly.

        Args:
            state: OpenAI names without ``visual.``: ``conv1.weight``, ``class_embedding``, …, ``proj``.
            source: named in errors.

        Raises:
            ValueError: a key missing for reading the sizes, or weights that do not fit.
        """
        needed = ("conv1.weight", "positional_embedding", "proj")
        missing = [k for k in needed if k not in state]
        if missing:
            raise ValueError(f"{source}: not CLIP vision weights; missing {missing}")
        width, _, patch, _ = state["conv1.weight"].shape
        layers = sum(k.endswith(".attn.in_proj_weight") for k in state)
        grid = math.isqrt(state["positional_embedding"].shape[0] - 1)
        with torch.device("meta"):  # sizes only; the weights come from ``state``
            tower = cls(width, layers, patch, patch * grid, state["proj"].shape[1])
        try:
            tower.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as error:
            raise ValueError(f"{source}: CLIP vision weights do not fit: {error}") from error
        tower.mean, tower.std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        return tower.float().eval()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` normalised pixels → ``(B, output_dim)`` embedding."""
        x = self.conv1(pixels.to(self.conv1.weight.dtype))            # (B, D, g, g)
        x = x.flatten(2).transpose(1, 2)                               # (B, g², D)
        cls_token = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls_token, x], 1) + self.positional_embedding.to(x.dtype)  # (B, g² + 1, D)
        x = self.transformer.resblocks(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj                       # (B, output_dim)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] → ``(B, 3, S, S)`` CLIP-normalised, as ``FrozenCLIPImageEmbedder`` does."""
        if tuple(image.shape[2:]) != (self.image_size, self.image_size):
            image = F.interpolate(image, size=(self.image_size, self.image_size), mode="bicubic", align_corners=True)
        return ((image + 1) / 2 - self.mean.to(image)) / self.std.to(image)

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] → ``(B, output_dim)`` float32 embedding (preprocess + tower)."""
        return self(self.preprocess(image)).float()
