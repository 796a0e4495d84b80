"""Independent float64 references for pix2gestalt's networks, on weights in the official layouts.

Nothing here imports the library under test. Each function is written from the official
module definitions (read, not copied), and the key lists from the same reading, so that a
checkpoint built here owes nothing to our converters:

- LDM UNet: pix2gestalt's ``ldm/modules/diffusionmodules/openaimodel.py`` (``UNetModel``,
  ``ResBlock``, ``Downsample`` (3×3 stride 2, padding 1), ``Upsample`` (nearest ×2 then 3×3),
  ``TimestepEmbedSequential``), ``util.py`` (``timestep_embedding``: ``[cos, sin]`` of
  ``t·10000^(−i/half)``; ``GroupNorm32`` with 32 groups, eps 1e-5) and ``ldm/modules/attention.py``
  (``SpatialTransformer``: GroupNorm eps 1e-6, 1×1-conv ``proj_in`` / ``proj_out``, residual;
  ``BasicTransformerBlock``: self-attention, cross-attention, GEGLU feed-forward of 4×
  width, each pre-LayerNorm and residual; ``CrossAttention``: bias-free q/k/v, scale
  ``d_head^−1/2``). With ``legacy: False`` and ``num_heads`` given, every transformer has
  ``num_heads`` heads of ``ch / num_heads``.
- LDM VAE: ``ldm/modules/diffusionmodules/model.py`` (``Encoder`` / ``Decoder``, ``ResnetBlock``
  with ``nin_shortcut`` when channels change, ``AttnBlock`` of 1×1 convs) and
  ``ldm/models/autoencoder.py`` (``quant_conv`` 2z → 2·embed_dim, ``post_quant_conv``).
- CLIP: OpenAI's ``clip/model.py`` ``VisionTransformer`` (see amodal/models/clip_vision.py for
  the list) and the text-side names ``clip.build_model`` leaves after pix2gestalt deletes
  ``transformer``.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- key lists


def _resblock(shapes, prefix, cin, cout, emb):
    shapes.update({f"{prefix}in_layers.0.weight": (cin,), f"{prefix}in_layers.0.bias": (cin,),
                   f"{prefix}in_layers.2.weight": (cout, cin, 3, 3), f"{prefix}in_layers.2.bias": (cout,),
                   f"{prefix}emb_layers.1.weight": (cout, emb), f"{prefix}emb_layers.1.bias": (cout,),
                   f"{prefix}out_layers.0.weight": (cout,), f"{prefix}out_layers.0.bias": (cout,),
                   f"{prefix}out_layers.3.weight": (cout, cout, 3, 3), f"{prefix}out_layers.3.bias": (cout,)})
    if cin != cout:
        shapes.update({f"{prefix}skip_connection.weight": (cout, cin, 1, 1), f"{prefix}skip_connection.bias": (cout,)})


def _transformer(shapes, prefix, c, context_dim):
    b = f"{prefix}transformer_blocks.0."
    shapes.update({f"{prefix}norm.weight": (c,), f"{prefix}norm.bias": (c,),
                   f"{prefix}proj_in.weight": (c, c, 1, 1), f"{prefix}proj_in.bias": (c,),
                   f"{prefix}proj_out.weight": (c, c, 1, 1), f"{prefix}proj_out.bias": (c,),
                   f"{b}ff.net.0.proj.weight": (8 * c, c), f"{b}ff.net.0.proj.bias": (8 * c,),
                   f"{b}ff.net.2.weight": (c, 4 * c), f"{b}ff.net.2.bias": (c,)})
    for name, source in (("attn1", c), ("attn2", context_dim)):
        shapes.update({f"{b}{name}.to_q.weight": (c, c), f"{b}{name}.to_k.weight": (c, source),
                       f"{b}{name}.to_v.weight": (c, source), f"{b}{name}.to_out.0.weight": (c, c),
                       f"{b}{name}.to_out.0.bias": (c,)})
    for norm in ("norm1", "norm2", "norm3"):
        shapes.update({f"{b}{norm}.weight": (c,), f"{b}{norm}.bias": (c,)})


def ldm_unet_shapes(hparams):
    """{LDM name: shape} of ``openaimodel.UNetModel(**hparams)`` (spatial transformer, depth 1)."""
    mc, mult, blocks = hparams["model_channels"], hparams["channel_mult"], hparams["num_res_blocks"]
    attention, context, emb = hparams["attention_resolutions"], hparams["context_dim"], 4 * hparams["model_channels"]
    shapes = {"time_embed.0.weight": (emb, mc), "time_embed.0.bias": (emb,), "time_embed.2.weight": (emb, emb),
              "time_embed.2.bias": (emb,), "input_blocks.0.0.weight": (mc, hparams["in_channels"], 3, 3),
              "input_blocks.0.0.bias": (mc,)}
    chans, ch, ds, index = [mc], mc, 1, 1
    for level, m in enumerate(mult):
        for _ in range(blocks):
            _resblock(shapes, f"input_blocks.{index}.0.", ch, m * mc, emb)
            ch = m * mc
            if ds in attention:
                _transformer(shapes, f"input_blocks.{index}.1.", ch, context)
            chans.append(ch)
            index += 1
        if level != len(mult) - 1:
            shapes.update({f"input_blocks.{index}.0.op.weight": (ch, ch, 3, 3), f"input_blocks.{index}.0.op.bias": (ch,)})
            chans.append(ch)
            ds, index = ds * 2, index + 1
    _resblock(shapes, "middle_block.0.", ch, ch, emb)
    _transformer(shapes, "middle_block.1.", ch, context)
    _resblock(shapes, "middle_block.2.", ch, ch, emb)
    index = 0
    for level, m in reversed(list(enumerate(mult))):
        for i in range(blocks + 1):
            _resblock(shapes, f"output_blocks.{index}.0.", ch + chans.pop(), m * mc, emb)
            ch, slot = m * mc, 1
            if ds in attention:
                _transformer(shapes, f"output_blocks.{index}.1.", ch, context)
                slot = 2
            if level and i == blocks:
                shapes.update({f"output_blocks.{index}.{slot}.conv.weight": (ch, ch, 3, 3),
                               f"output_blocks.{index}.{slot}.conv.bias": (ch,)})
                ds //= 2
            index += 1
    shapes.update({"out.0.weight": (ch,), "out.0.bias": (ch,), "out.2.weight": (hparams["out_channels"], ch, 3, 3),
                   "out.2.bias": (hparams["out_channels"],)})
    return shapes


def _vae_resnet(shapes, prefix, cin, cout):
    shapes.update({f"{prefix}norm1.weight": (cin,), f"{prefix}norm1.bias": (cin,),
                   f"{prefix}conv1.weight": (cout, cin, 3, 3), f"{prefix}conv1.bias": (cout,),
                   f"{prefix}norm2.weight": (cout,), f"{prefix}norm2.bias": (cout,),
                   f"{prefix}conv2.weight": (cout, cout, 3, 3), f"{prefix}conv2.bias": (cout,)})
    if cin != cout:
        shapes.update({f"{prefix}nin_shortcut.weight": (cout, cin, 1, 1), f"{prefix}nin_shortcut.bias": (cout,)})


def _vae_middle(shapes, prefix, c):
    _vae_resnet(shapes, f"{prefix}mid.block_1.", c, c)
    shapes.update({f"{prefix}mid.attn_1.norm.weight": (c,), f"{prefix}mid.attn_1.norm.bias": (c,)})
    for conv in ("q", "k", "v", "proj_out"):
        shapes.update({f"{prefix}mid.attn_1.{conv}.weight": (c, c, 1, 1), f"{prefix}mid.attn_1.{conv}.bias": (c,)})
    _vae_resnet(shapes, f"{prefix}mid.block_2.", c, c)


def ldm_vae_shapes(ddconfig, embed_dim=4):
    """{LDM name: shape} of ``ldm.models.autoencoder.AutoencoderKL(ddconfig, embed_dim)``."""
    ch, mult, blocks, z = ddconfig["ch"], ddconfig["ch_mult"], ddconfig["num_res_blocks"], ddconfig["z_channels"]
    shapes = {"encoder.conv_in.weight": (ch, ddconfig["in_channels"], 3, 3), "encoder.conv_in.bias": (ch,)}
    block_in = ch
    for i, m in enumerate(mult):
        for b in range(blocks):
            _vae_resnet(shapes, f"encoder.down.{i}.block.{b}.", block_in, ch * m)
            block_in = ch * m
        if i != len(mult) - 1:
            shapes.update({f"encoder.down.{i}.downsample.conv.weight": (block_in, block_in, 3, 3),
                           f"encoder.down.{i}.downsample.conv.bias": (block_in,)})
    _vae_middle(shapes, "encoder.", block_in)
    shapes.update({"encoder.norm_out.weight": (block_in,), "encoder.norm_out.bias": (block_in,),
                   "encoder.conv_out.weight": (2 * z, block_in, 3, 3), "encoder.conv_out.bias": (2 * z,),
                   "quant_conv.weight": (2 * embed_dim, 2 * z, 1, 1), "quant_conv.bias": (2 * embed_dim,),
                   "post_quant_conv.weight": (z, embed_dim, 1, 1), "post_quant_conv.bias": (z,)})
    block_in = ch * mult[-1]
    shapes.update({"decoder.conv_in.weight": (block_in, z, 3, 3), "decoder.conv_in.bias": (block_in,)})
    _vae_middle(shapes, "decoder.", block_in)
    for i in reversed(range(len(mult))):
        for b in range(blocks + 1):
            _vae_resnet(shapes, f"decoder.up.{i}.block.{b}.", block_in, ch * mult[i])
            block_in = ch * mult[i]
        if i:
            shapes.update({f"decoder.up.{i}.upsample.conv.weight": (block_in, block_in, 3, 3),
                           f"decoder.up.{i}.upsample.conv.bias": (block_in,)})
    shapes.update({"decoder.norm_out.weight": (block_in,), "decoder.norm_out.bias": (block_in,),
                   "decoder.conv_out.weight": (ddconfig["out_ch"], block_in, 3, 3),
                   "decoder.conv_out.bias": (ddconfig["out_ch"],)})
    return shapes


def clip_shapes(width, layers, patch, grid, output_dim, text_width=32, vocab=50, context_length=7):
    """{OpenAI name: shape} of ``clip.model.CLIP`` after ``del model.transformer``: the vision
    tower under ``visual.`` and the text side's leftovers."""
    shapes = {"visual.conv1.weight": (width, 3, patch, patch), "visual.class_embedding": (width,),
              "visual.positional_embedding": (grid * grid + 1, width), "visual.proj": (width, output_dim)}
    for norm in ("ln_pre", "ln_post"):
        shapes.update({f"visual.{norm}.weight": (width,), f"visual.{norm}.bias": (width,)})
    for i in range(layers):
        p = f"visual.transformer.resblocks.{i}."
        shapes.update({f"{p}attn.in_proj_weight": (3 * width, width), f"{p}attn.in_proj_bias": (3 * width,),
                       f"{p}attn.out_proj.weight": (width, width), f"{p}attn.out_proj.bias": (width,),
                       f"{p}mlp.c_fc.weight": (4 * width, width), f"{p}mlp.c_fc.bias": (4 * width,),
                       f"{p}mlp.c_proj.weight": (width, 4 * width), f"{p}mlp.c_proj.bias": (width,)})
        for norm in ("ln_1", "ln_2"):
            shapes.update({f"{p}{norm}.weight": (width,), f"{p}{norm}.bias": (width,)})
    shapes.update({"token_embedding.weight": (vocab, text_width), "positional_embedding": (context_length, text_width),
                   "ln_final.weight": (text_width,), "ln_final.bias": (text_width,),
                   "text_projection": (text_width, output_dim), "logit_scale": ()})
    return shapes


def random_weights(shapes, seed):
    """Every tensor random (nothing zero-initialised hides a swap): weights ~ N(0, 1/fan_in),
    norm scales 1 + N(0, 0.1²), other vectors N(0, 0.1²); float32."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in sorted(shapes.items()):
        x = torch.randn(shape, generator=generator)
        if len(shape) >= 2:
            fan_in = math.prod(shape[1:]) if name != "visual.proj" and not name.endswith("text_projection") \
                else shape[0]
            x = x / math.sqrt(fan_in)
        elif name.endswith("weight") and ("norm" in name or "ln_" in name or ".in_layers.0." in name
                                          or ".out_layers.0." in name or name.startswith("out.0")):
            x = 1 + 0.1 * x
        else:
            x = 0.1 * x
        state[name] = x
    return state


# --------------------------------------------------------------------------- forwards


def _conv(x, w, name, **kwargs):
    return F.conv2d(x, w[f"{name}.weight"], w[f"{name}.bias"], **kwargs)


def _linear(x, w, name, bias=True):
    y = x @ w[f"{name}.weight"].T
    return y + w[f"{name}.bias"] if bias else y


def _group_norm(x, w, name, eps):
    return F.group_norm(x, 32, w[f"{name}.weight"], w[f"{name}.bias"], eps)


def _layer_norm(x, w, name):
    return F.layer_norm(x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], 1e-5)


def _heads_attention(q, k, v, heads):
    """Scaled dot-product attention by hand: (B, N, C) queries, (B, M, C) keys and values."""
    b, n, c = q.shape
    d = c // heads
    q, k, v = (t.reshape(b, -1, heads, d).transpose(1, 2) for t in (q, k, v))      # (B, h, ·, d)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1)            # (B, h, N, M)
    return (weights @ v).transpose(1, 2).reshape(b, n, c)


def _res_block(x, emb, w, p):
    h = _conv(F.silu(_group_norm(x, w, f"{p}in_layers.0", 1e-5)), w, f"{p}in_layers.2", padding=1)
    h = h + _linear(F.silu(emb), w, f"{p}emb_layers.1")[:, :, None, None]
    h = _conv(F.silu(_group_norm(h, w, f"{p}out_layers.0", 1e-5)), w, f"{p}out_layers.3", padding=1)
    return (_conv(x, w, f"{p}skip_connection") if f"{p}skip_connection.weight" in w else x) + h


def _spatial_transformer(x, context, w, p, heads):
    b, c, height, width = x.shape
    h = _conv(_group_norm(x, w, f"{p}norm", 1e-6), w, f"{p}proj_in").flatten(2).transpose(1, 2)  # (B, HW, C)
    t = f"{p}transformer_blocks.0."
    for name, source in (("attn1", None), ("attn2", context)):
        n = _layer_norm(h, w, t + ("norm1" if name == "attn1" else "norm2"))
        s = n if source is None else source
        out = _heads_attention(_linear(n, w, f"{t}{name}.to_q", False), _linear(s, w, f"{t}{name}.to_k", False),
                               _linear(s, w, f"{t}{name}.to_v", False), heads)
        h = _linear(out, w, f"{t}{name}.to_out.0") + h
    value, gate = _linear(_layer_norm(h, w, f"{t}norm3"), w, f"{t}ff.net.0.proj").chunk(2, -1)
    h = _linear(value * F.gelu(gate), w, f"{t}ff.net.2") + h
    return _conv(h.transpose(1, 2).reshape(b, c, height, width), w, f"{p}proj_out") + x


def _block(h, emb, context, w, prefix, heads):
    if f"{prefix}0.op.weight" in w:                                   # Downsample
        return _conv(h, w, f"{prefix}0.op", stride=2, padding=1)
    h = _res_block(h, emb, w, f"{prefix}0.")
    slot = 1
    if f"{prefix}1.norm.weight" in w:
        h, slot = _spatial_transformer(h, context, w, f"{prefix}1.", heads), 2
    if f"{prefix}{slot}.conv.weight" in w:                            # Upsample
        h = _conv(F.interpolate(h, scale_factor=2, mode="nearest"), w, f"{prefix}{slot}.conv", padding=1)
    return h


def ldm_unet_forward(state, hparams, x, t, context):
    """``openaimodel.UNetModel.forward(x, t, context)`` in float64 on LDM-named ``state``."""
    w = {k: v.double() for k, v in state.items()}
    x, context = x.double(), context.double()
    half, heads = hparams["model_channels"] // 2, hparams["num_heads"]
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = t.double()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
    emb = _linear(F.silu(_linear(emb, w, "time_embed.0")), w, "time_embed.2")
    h, skips, i = _conv(x, w, "input_blocks.0.0", padding=1), [], 1
    skips.append(h)
    while f"input_blocks.{i}.0.op.weight" in w or f"input_blocks.{i}.0.in_layers.0.weight" in w:
        h = _block(h, emb, context, w, f"input_blocks.{i}.", heads)
        skips.append(h)
        i += 1
    h = _res_block(h, emb, w, "middle_block.0.")
    h = _spatial_transformer(h, context, w, "middle_block.1.", heads)
    h = _res_block(h, emb, w, "middle_block.2.")
    i = 0
    while f"output_blocks.{i}.0.in_layers.0.weight" in w:
        h = _block(torch.cat([h, skips.pop()], 1), emb, context, w, f"output_blocks.{i}.", heads)
        i += 1
    return _conv(F.silu(_group_norm(h, w, "out.0", 1e-5)), w, "out.2", padding=1)


def clip_image_forward(state, pixels):
    """OpenAI's ``VisionTransformer.forward`` in float64; ``state`` has names without ``visual.``."""
    w = {k: v.double() for k, v in state.items()}
    width = w["conv1.weight"].shape[0]
    heads = width // 64
    x = F.conv2d(pixels.double(), w["conv1.weight"], stride=w["conv1.weight"].shape[-1]).flatten(2).transpose(1, 2)
    x = torch.cat([w["class_embedding"].expand(x.shape[0], 1, -1), x], 1) + w["positional_embedding"]
    x = _layer_norm(x, w, "ln_pre")
    i = 0
    while f"transformer.resblocks.{i}.ln_1.weight" in w:
        p = f"transformer.resblocks.{i}."
        qkv = _layer_norm(x, w, f"{p}ln_1") @ w[f"{p}attn.in_proj_weight"].T + w[f"{p}attn.in_proj_bias"]
        x = x + _linear(_heads_attention(*qkv.chunk(3, -1), heads), w, f"{p}attn.out_proj")
        hidden = _linear(_layer_norm(x, w, f"{p}ln_2"), w, f"{p}mlp.c_fc")
        x = x + _linear(hidden * torch.sigmoid(1.702 * hidden), w, f"{p}mlp.c_proj")
        i += 1
    return _layer_norm(x[:, 0], w, "ln_post") @ w["proj"]


def bicubic_align_corners(image, height, width):
    """Resize ``(B, C, H, W)`` numpy float64 by Keys' cubic convolution (a = −0.75), sample
    positions ``i·(in − 1)/(out − 1)`` (``align_corners=True``), borders clamped."""
    def matrix(out, size):
        a = -0.75
        m = np.zeros((out, size))
        for i in range(out):
            source = i * (size - 1) / (out - 1) if out > 1 else 0.0
            base = math.floor(source)
            for tap in range(base - 1, base + 3):
                d = abs(source - tap)
                weight = ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else \
                    ((a * d - 5 * a) * d + 8 * a) * d - 4 * a if d < 2 else 0.0
                m[i, min(max(tap, 0), size - 1)] += weight
        return m
    rows, cols = matrix(height, image.shape[2]), matrix(width, image.shape[3])
    return np.einsum("hH,bcHW,wW->bchw", rows, image, cols)
