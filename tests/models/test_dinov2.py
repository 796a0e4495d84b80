"""DINOv2 encoder: DAV2's position-embedding resampling, taps, attention switch."""
import math

import pytest
import torch
import torch.nn.functional as F

from amodal.models.dinov2 import (
    INTERPOLATE_OFFSET,
    DINOv2,
    EncoderConfig,
    bicubic_matrix,
    dav2_pos_embed,
    dav2_pos_embed_traceable,
)

TINY = EncoderConfig(embed_dim=32, depth=4, num_heads=2, taps=(0, 2, 3), img_size=70)


def _cubic_weights(t: float, a: float = -0.75) -> list[float]:
    """Keys' cubic convolution weights of the 4 taps around a fractional position t ∈ [0, 1)."""
    def k(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a if x < 2 else 0.0
    return [k(t + 1), k(t), k(1 - t), k(2 - t)]


def _reference_resample(table, n, out_h, out_w):
    """float64 bicubic resampling with DAV2's scale factors, written out pixel by pixel."""
    grid = table[1:].reshape(n, n, -1).double()
    sy, sx = (out_h + INTERPOLATE_OFFSET) / n, (out_w + INTERPOLATE_OFFSET) / n
    out = torch.zeros(out_h, out_w, grid.shape[-1], dtype=torch.float64)
    for i in range(out_h):
        y = (i + 0.5) / sy - 0.5
        y0 = math.floor(y)
        wy = _cubic_weights(y - y0)
        for j in range(out_w):
            x = (j + 0.5) / sx - 0.5
            x0 = math.floor(x)
            wx = _cubic_weights(x - x0)
            for dy in range(4):
                for dx in range(4):
                    yy = min(max(y0 - 1 + dy, 0), n - 1)  # border: clamp, as PyTorch does
                    xx = min(max(x0 - 1 + dx, 0), n - 1)
                    out[i, j] += wy[dy] * wx[dx] * grid[yy, xx]
    return out.reshape(out_h * out_w, -1)


def test_pos_embed_unchanged_at_training_grid():
    table = torch.randn(1, 1 + 25, 8)
    assert dav2_pos_embed(table, (5, 5)) is table


@pytest.mark.parametrize("grid", [(7, 4), (3, 6), (5, 6)])
def test_pos_embed_matches_bicubic_with_offset(grid):
    torch.manual_seed(0)
    table = torch.randn(1, 1 + 25, 8)
    out = dav2_pos_embed(table, grid)
    assert out.shape == (1, 1 + grid[0] * grid[1], 8)
    assert torch.equal(out[0, 0], table[0, 0])  # class token entry kept
    reference = _reference_resample(table[0], 5, *grid)
    assert torch.allclose(out[0, 1:].double(), reference, atol=1e-5)


def test_pos_embed_differs_from_plain_size_resampling():
    """The +0.1 offset is not cosmetic: resampling to size=(h, w) gives other numbers."""
    torch.manual_seed(0)
    table = torch.randn(1, 1 + 25, 8)
    grid = table[:, 1:].reshape(1, 5, 5, 8).permute(0, 3, 1, 2)
    plain = torch.nn.functional.interpolate(grid, size=(7, 4), mode="bicubic")
    plain = plain.permute(0, 2, 3, 1).reshape(1, 28, 8)
    assert (dav2_pos_embed(table, (7, 4))[:, 1:] - plain).abs().max() > 1e-3


@pytest.mark.parametrize("grid", [(7, 4), (3, 6), (5, 6), (1, 1), (9, 9), (2, 12)])
def test_traceable_pos_embed_matches_bicubic_with_offset(grid):
    torch.manual_seed(0)
    table = torch.randn(1, 1 + 25, 8)
    out = dav2_pos_embed_traceable(table, grid)
    assert out.shape == (1, 1 + grid[0] * grid[1], 8)
    assert torch.equal(out[0, 0], table[0, 0])
    reference = _reference_resample(table[0], 5, *grid)
    assert torch.allclose(out[0, 1:].double(), reference, atol=1e-5)
    assert torch.allclose(out, dav2_pos_embed(table, grid), atol=5e-6)


def test_traceable_pos_embed_unchanged_at_training_grid():
    # not resampled with scale 5.1/5: both matrices are the identity, the table comes back bit for bit
    table = torch.randn(1, 1 + 25, 8)
    assert torch.equal(dav2_pos_embed_traceable(table, (5, 5)), table)
    # a grid with one side at the training size is resampled (the official rule: both sides)
    assert not torch.equal(dav2_pos_embed_traceable(table, (5, 6))[:, 1:6], table[:, 1:6])


def test_bicubic_matrix_rows_are_keys_weights():
    # each output of a 1-D resampling of 4 → 6 (scale 6.1/4) read off the hand-written kernel
    matrix = bicubic_matrix(6, 4, torch.tensor(4 / 6.1))
    for i in range(6):
        x = (i + 0.5) * 4 / 6.1 - 0.5
        expected = torch.zeros(4, dtype=torch.float64)
        for k, weight in enumerate(_cubic_weights(x - math.floor(x))):
            expected[min(max(math.floor(x) - 1 + k, 0), 3)] += weight
        assert torch.allclose(matrix[i].double(), expected, atol=1e-6)


def test_exported_encoder_resamples_for_the_actual_size():
    """torch.export bakes F.interpolate's scale factor in as a constant of the example size; the
    encoder's position embedding must follow the size of each input of the exported graph."""
    torch.manual_seed(0)
    encoder = DINOv2(TINY).eval()

    class Positions(torch.nn.Module):
        def forward(self, tokens):  # (B, h, w, C) patch tokens
            return encoder._pos_embed(tokens)

    rows, cols = torch.export.Dim("rows", min=1, max=64), torch.export.Dim("cols", min=1, max=64)
    program = torch.export.export(Positions(), (torch.zeros(1, 3, 2, 32),), dynamic_shapes=({1: rows, 2: cols},))
    for grid in [(5, 5), (7, 4), (3, 6), (9, 9)]:
        tokens = torch.randn(1, *grid, 32)
        with torch.no_grad():
            assert torch.allclose(program.module()(tokens), encoder._pos_embed(tokens), atol=5e-6), grid


def _manual_taps(encoder, image):
    """The official DINOv2 forward written out with functional ops on the encoder's weights
    (float64): patch conv, class token, DAV2 positions, pre-norm blocks with LayerScale,
    softmax(q·kᵀ/√d)·v attention, erf-GELU MLP, final LayerNorm (eps 1e-6) on each tap."""
    p = {k: v.double() for k, v in encoder.state_dict().items()}
    heads = TINY.num_heads

    def norm(x, name):
        return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"], 1e-6)

    def linear(x, name):
        return F.linear(x, p[name + ".weight"], p[name + ".bias"])

    x = F.conv2d(image.double(), p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=14)
    B, C, h, w = x.shape
    x = torch.cat([p["cls_token"].expand(B, -1, -1), x.flatten(2).transpose(1, 2)], 1)
    x = x + dav2_pos_embed(p["pos_embed"], (h, w))
    taps = []
    for i in range(TINY.depth):
        b = f"blocks.{i}."
        q, k, v = linear(norm(x, b + "norm1"), b + "attn.qkv").view(B, -1, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // heads), -1)  # (B, nh, T, T)
        out = (attention @ v).transpose(1, 2).reshape(B, -1, C)
        x = x + p[b + "ls1.gamma"] * linear(out, b + "attn.proj")
        hidden = F.gelu(linear(norm(x, b + "norm2"), b + "mlp.fc1"))
        x = x + p[b + "ls2.gamma"] * linear(hidden, b + "mlp.fc2")
        if i in TINY.taps:
            taps.append(norm(x, "norm")[:, 1:])
    return taps


@pytest.mark.parametrize("size", [(70, 70), (98, 56)])
def test_taps_are_normed_block_outputs_without_class_token(size):
    torch.manual_seed(0)
    encoder = DINOv2(TINY, fused_attn=False).eval()
    with torch.no_grad():
        for name, param in encoder.named_parameters():  # LayerScale and norms off their 1 / 0 init
            if param.ndim == 1:
                param.add_(torch.randn_like(param) * 0.2)
        image = torch.randn(2, 3, *size)
        taps = encoder.forward_taps(image)
        expected = _manual_taps(encoder, image)
    assert len(taps) == len(TINY.taps)
    for tap, ref in zip(taps, expected):
        assert tap.shape == (2, size[0] // 14 * size[1] // 14, 32)
        torch.testing.assert_close(tap.double(), ref, rtol=0, atol=1e-5)


def test_fused_attention_close_to_step_by_step():
    torch.manual_seed(0)
    encoder = DINOv2(TINY).eval()
    image = torch.randn(1, 3, 84, 70)
    with torch.no_grad():
        fused = encoder.forward_taps(image)
        encoder.set_fused_attention(False)
        assert not any(block.attn.fused_attn for block in encoder.blocks)
        step = encoder.forward_taps(image)
    for a, b in zip(fused, step):
        assert (a - b).abs().max() < 1e-5


def test_state_dict_has_official_names():
    keys = set(DINOv2(TINY).state_dict())
    for key in ["cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.ls1.gamma",
                "blocks.0.attn.qkv.weight", "blocks.3.mlp.fc2.bias", "norm.weight"]:
        assert key in keys
    assert DINOv2(TINY).pos_embed.shape == (1, 26, 32)


def test_guidance_embedding_zero_initialised_and_required():
    encoder = DINOv2(TINY, guidance_channels=2)
    assert encoder.patch_embed_guidance.proj.weight.shape == (32, 2, 14, 14)
    assert not encoder.patch_embed_guidance.proj.weight.any() and not encoder.patch_embed_guidance.proj.bias.any()
    with pytest.raises(ValueError, match="guidance"):
        encoder.forward_taps(torch.zeros(1, 3, 70, 70))
    with pytest.raises(ValueError, match="no guidance"):
        DINOv2(TINY).forward_taps(torch.zeros(1, 3, 70, 70), torch.zeros(1, 2, 70, 70))


def test_rejects_sizes_that_are_not_multiples_of_14():
    with pytest.raises(ValueError, match="multiples of 14"):
        DINOv2(TINY).forward_taps(torch.zeros(1, 3, 70, 75))


@pytest.mark.parametrize("dim, hidden", [(1536, 4096), (32, 88), (40, 112)])
def test_swiglu_width_is_the_official_rule(dim, hidden):
    # SwiGLUFFNFused: (int(4·C · 2/3) + 7) // 8 · 8, worked out by hand: 4096, 88, 112
    with torch.device("meta"):
        encoder = DINOv2(EncoderConfig(dim, 1, 1, (0,), swiglu=True, img_size=28))
    mlp = encoder.blocks[0].mlp
    assert tuple(mlp.fc1.weight.shape) == (2 * hidden, dim) and tuple(mlp.fc2.weight.shape) == (dim, hidden)
