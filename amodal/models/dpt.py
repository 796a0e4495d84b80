"""The DPT head of Depth Anything V2, with Amodal-DAV2's input projections.

DPT (Ranftl et al., 2021) turns four ViT token maps, all at 1/14 resolution, into a
pyramid (×4, ×2, ×1, ×½ by transposed / strided convolutions), fuses it coarse to fine
with residual conv units, and upsamples to the input size. Module names follow the
official code (``projects``, ``resize_layers``, ``scratch.*``) so that checkpoints map
one to one.

Amodal-DAV2 (paper Sec. 4.1) adds an **input projection** after each pyramid level:
Conv3×3 (c → c) + LayerNorm over channels (eps 1e-6) + ReLU. The new guidance signal
shifts the token statistics; the normalisation keeps the head's inputs in range.
The last layer is a ReLU for DAV2 (unbounded disparity) and a Sigmoid for Amodal-DAV2
(normalised disparity in [0, 1]).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_HIDDEN = 32  # channels of the last hidden conv, fixed in DAV2


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map, computed as the official code does."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)  # biased, as LayerNorm
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ResidualConvUnit(nn.Module):
    """x + conv(relu(conv(relu(x)))), 3×3 convolutions."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    """Add a skip level, refine, upsample (bilinear, corners aligned), 1×1 conv."""

    def __init__(self, features: int):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)  # unused by the coarsest block, kept for the weights
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, size=None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    """Token maps of four ViT blocks → one-channel map at the input resolution.

    Args:
        in_channels: ViT token width.
        features: width of the fusion path (64 / 128 / 256 / 384 for S / B / L / G).
        out_channels: widths of the four pyramid levels.
        input_projection: add Amodal-DAV2's Conv3×3 + LayerNorm + ReLU per level.
        output: ``"relu"`` (DAV2) or ``"sigmoid"`` (Amodal-DAV2).
    """

    def __init__(
        self,
        in_channels: int,
        features: int,
        out_channels: tuple[int, int, int, int],
        input_projection: bool = False,
        output: str = "relu",
    ):
        super().__init__()
        if output not in ("relu", "sigmoid"):
            raise ValueError(f"output must be 'relu' or 'sigmoid', got {output!r}")
        c = out_channels
        self.projects = nn.ModuleList([nn.Conv2d(in_channels, ch, 1) for ch in c])
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(c[0], c[0], kernel_size=4, stride=4),  # ×4
            nn.ConvTranspose2d(c[1], c[1], kernel_size=2, stride=2),  # ×2
            nn.Identity(),  # ×1
            nn.Conv2d(c[3], c[3], kernel_size=3, stride=2, padding=1),  # ×½
        ])
        self.input_projection = None
        if input_projection:
            self.input_projection = nn.ModuleList([
                nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), ChannelLayerNorm(ch), nn.ReLU()) for ch in c
            ])
        self.scratch = nn.Module()
        for i, ch in enumerate(c, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(ch, features, 3, padding=1, bias=False))
            setattr(self.scratch, f"refinenet{i}", FeatureFusionBlock(features))
        self.scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, HEAD_HIDDEN, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(HEAD_HIDDEN, 1, 1),
            nn.ReLU() if output == "relu" else nn.Sigmoid(),
        )

    def forward(self, features: list[torch.Tensor], patch_h: int, patch_w: int) -> torch.Tensor:
        """Args:
            features: four (B, h·w, C) token maps (class token dropped).
            patch_h, patch_w: the token grid, h = H / 14, w = W / 14.

        Returns:
            (B, 1, 14·h, 14·w).
        """
        levels = []
        for i, tokens in enumerate(features):
            x = tokens.permute(0, 2, 1).reshape(tokens.shape[0], tokens.shape[-1], patch_h, patch_w)
            x = self.resize_layers[i](self.projects[i](x))
            if self.input_projection is not None:
                x = self.input_projection[i](x)
            levels.append(x)
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(x) for i, x in enumerate(levels, start=1))
        path = s.refinenet4(l4, size=l3.shape[2:])
        path = s.refinenet3(path, l3, size=l2.shape[2:])
        path = s.refinenet2(path, l2, size=l1.shape[2:])
        path = s.refinenet1(path, l1)
        out = s.output_conv1(path)
        out = F.interpolate(out, (patch_h * 14, patch_w * 14), mode="bilinear", align_corners=True)
        return s.output_conv2(out)
