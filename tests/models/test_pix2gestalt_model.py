"""pix2gestalt on diffusers against the official code's behaviour, re-derived independently.

A tiny checkpoint in the released Lightning layout is written from the official module
definitions (tests/pix2gestalt_testdata.py, tests/ldm_reference.py), never by our converters.
The references are float64 re-derivations of the LDM UNet, OpenAI's CLIP tower, the
inference script's conditioning, the DDIM paper's step and classifier-free guidance.
"""
import numpy as np
import pytest
import torch

from amodal.models.autoencoders import SD_VAE_DDCONFIG
from amodal.models.ddim import ddim_schedule, ddim_step
from amodal.models.ldm_convert import unet_config_from_ldm
from amodal.models.pix2gestalt import (
    DEMO_SAMPLING,
    IMAGE_SIZE,
    PIX2GESTALT_UNET,
    TINY_CLIP,
    TINY_CONFIG,
    Pix2Gestalt,
    Pix2GestaltConfig,
    tiny_pix2gestalt,
)
from ldm_reference import bicubic_align_corners, clip_image_forward, ldm_unet_forward
from pickle_testdata import write_hostile_checkpoint
from pix2gestalt_testdata import (
    TINY_UNET,
    TINY_VAE,
    lightning_state_dict,
    schedule_buffers,
    tiny_parts,
    write_lightning_checkpoint,
)

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073]).reshape(1, 3, 1, 1)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711]).reshape(1, 3, 1, 1)


@pytest.fixture(scope="module")
def parts():
    return tiny_parts()


@pytest.fixture(scope="module")
def checkpoint(parts, tmp_path_factory):
    return write_lightning_checkpoint(tmp_path_factory.mktemp("p2g") / "epoch=000005.ckpt", lightning_state_dict(parts))


@pytest.fixture(scope="module")
def model(checkpoint):
    return Pix2Gestalt.from_checkpoint(checkpoint, TINY_CONFIG)


def inputs(batch=1, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=g)
    visible_mask = torch.zeros(batch, 1, size, size)
    visible_mask[..., size // 4: size // 2, size // 4: 3 * size // 4] = 1
    return image, visible_mask


def reference_alphas_cumprod():
    return np.cumprod(1 - np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2)


def reference_condition(model, parts, image, visible_mask):
    """sample_model in inference.py: VAE posterior modes (unscaled) of the image and of the mask
    as a 3-channel image, both in [-1, 1]; cc_projection of CLIP's embedding of the image."""
    vae = model.vae
    with torch.no_grad():
        def mode(x):  # the posterior's mean: the first half of quant_conv's channels
            return vae.quant_conv(vae.encoder(x))[:, :4].double()
        concat = torch.cat([mode(image * 2 - 1), mode(visible_mask.repeat(1, 3, 1, 1) * 2 - 1)], 1)
    pixels = bicubic_align_corners((image * 2 - 1).double().numpy(), 16, 16)
    pixels = torch.from_numpy(((pixels + 1) / 2 - CLIP_MEAN) / CLIP_STD)
    visual = {k[len("visual."):]: v for k, v in parts["clip"].items() if k.startswith("visual.")}
    embedding = clip_image_forward(visual, pixels)
    projection = parts["cc_projection"]
    context = (embedding @ projection["weight"].double().T + projection["bias"].double())[:, None]
    return concat, context


def reference_noise(unet, x, t, concat, context, scale):
    """Classifier-free guidance of the LDM UNet: zeros for both conditionings unconditionally."""
    cond = ldm_unet_forward(unet, TINY_UNET, torch.cat([x, concat], 1), t, context)
    uncond = ldm_unet_forward(unet, TINY_UNET, torch.cat([x, torch.zeros_like(concat)], 1), t, torch.zeros_like(context))
    return uncond + scale * (cond - uncond)


def test_the_released_configuration_is_the_yamls():
    # sd-finetune-pix2gestalt-c_concat-256.yaml, unet_config.params, written out here by hand
    assert {k: PIX2GESTALT_UNET[k] for k in ("in_channels", "out_channels", "model_channels", "attention_resolutions",
                                             "num_res_blocks", "channel_mult", "num_heads", "context_dim")} == \
        {"in_channels": 12, "out_channels": 4, "model_channels": 320, "attention_resolutions": [4, 2, 1],
         "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_heads": 8, "context_dim": 768}
    config = unet_config_from_ldm(PIX2GESTALT_UNET)
    assert config["block_out_channels"] == (320, 640, 1280, 1280) and config["attention_head_dim"] == 8
    assert config["down_block_types"] == ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    assert config["use_linear_projection"] is False  # SD-1: the yaml has no use_linear_in_transformer
    released = Pix2GestaltConfig()
    assert (released.timesteps, released.linear_start, released.linear_end, released.scale_factor) == \
        (1000, 0.00085, 0.012, 0.18215)
    assert released.vae == SD_VAE_DDCONFIG and SD_VAE_DDCONFIG["ch_mult"] == [1, 2, 4, 4] and SD_VAE_DDCONFIG["ch"] == 128
    # Amodal Depth Anything's app.py: run_pix2gestalt(..., scale=1.5, n_samples=1, ddim_steps=100), ddim_eta left at 1.0
    assert DEMO_SAMPLING == {"steps": 100, "guidance_scale": 1.5, "eta": 1.0} and IMAGE_SIZE == 256
    # the tiny test checkpoint is written with the library's tiny sizes
    assert TINY_CONFIG.unet == TINY_UNET and TINY_CONFIG.vae == TINY_VAE
    assert TINY_CLIP == {"width": 128, "layers": 2, "patch_size": 4, "image_size": 16, "output_dim": 48}


def test_the_unet_loaded_from_the_checkpoint_is_the_ldm_unet(model, parts, checkpoint):
    """(b) the diffusers UNet, loaded through diffusers' LDM converter, against openaimodel's
    forward re-derived in float64 on the LDM-named weights; the EMA weights by default."""
    g = torch.Generator().manual_seed(1)
    x, concat = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 8, 8, 8, generator=g)
    context, t = torch.randn(2, 1, 32, generator=g), torch.tensor([991, 1])
    with torch.no_grad():
        ours = model.predict_noise(x, t, concat, context)
    reference = ldm_unet_forward(parts["ema"], TINY_UNET, torch.cat([x, concat], 1), t, context)
    np.testing.assert_allclose(ours.double().numpy(), reference.numpy(), rtol=1e-5, atol=2e-5)
    raw = Pix2Gestalt.from_checkpoint(checkpoint, TINY_CONFIG, ema=False)
    with torch.no_grad():
        ours_raw = raw.predict_noise(x, t, concat, context)
    reference_raw = ldm_unet_forward(parts["unet"], TINY_UNET, torch.cat([x, concat], 1), t, context)
    np.testing.assert_allclose(ours_raw.double().numpy(), reference_raw.numpy(), rtol=1e-5, atol=2e-5)
    assert (reference - reference_raw).abs().max() > 0.1  # the two weight sets really differ


def test_every_part_takes_its_weights_from_its_prefix(model, parts):
    vae, clip = model.vae, model.clip
    # LDM VAE → diffusers: the same conv, the attention's 1×1 convs as linears, the decoder's levels reversed
    assert torch.equal(vae.encoder.conv_in.weight, parts["vae"]["encoder.conv_in.weight"])
    ldm = parts["vae"]
    assert torch.equal(vae.encoder.mid_block.attentions[0].to_q.weight, ldm["encoder.mid.attn_1.q.weight"][:, :, 0, 0])
    assert torch.equal(vae.decoder.up_blocks[0].resnets[0].conv1.weight, ldm["decoder.up.1.block.0.conv1.weight"])
    assert torch.equal(vae.quant_conv.weight, parts["vae"]["quant_conv.weight"])
    assert torch.equal(clip.transformer.resblocks[1].attn.in_proj_weight,
                       parts["clip"]["visual.transformer.resblocks.1.attn.in_proj_weight"])
    assert torch.equal(model.cc_projection.weight, parts["cc_projection"]["weight"])


def test_conditioning_is_the_inference_scripts(model, parts):
    image, visible_mask = inputs(batch=2)
    with torch.no_grad():
        concat, context = model.condition(image, visible_mask)
    expected_concat, expected_context = reference_condition(model, parts, image, visible_mask)
    assert concat.shape == (2, 8, 16, 16) and context.shape == (2, 1, 32)
    np.testing.assert_allclose(concat.double().numpy(), expected_concat.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(context.double().numpy(), expected_context.numpy(), rtol=1e-5, atol=1e-5)
    # unscaled: the mode itself, not the 0.18215-scaled latents the target lives in
    assert not np.allclose(concat.numpy(), 0.18215 * expected_concat.numpy(), atol=1e-3)


def test_one_guided_ddim_step_matches_the_reference(model, parts):
    """(c) one step of the demo's sampler (100 steps, guidance 1.5, η = 1) at its first timestep."""
    image, visible_mask = inputs()
    g = torch.Generator().manual_seed(2)
    x, z = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 4, 16, 16, generator=g)
    with torch.no_grad():
        concat, context = model.condition(image, visible_mask)
        schedule = ddim_schedule(model.alphas_cumprod, 100, eta=1.0)
        noise = model.guided_noise(x, torch.tensor([991]), concat, context, 1.5)
        ours, _ = ddim_step(x, noise, float(schedule.alphas[-1]), float(schedule.alphas_prev[-1]),
                            float(schedule.sigmas[-1]), z)
    eps = reference_noise(parts["ema"], x.double(), torch.tensor([991]), concat.double(), context.double(), 1.5)
    a = reference_alphas_cumprod()
    a_t, a_prev = a[991], a[981]
    sigma = np.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))  # η = 1
    x0 = (x.double().numpy() - np.sqrt(1 - a_t) * eps.numpy()) / np.sqrt(a_t)
    expected = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev - sigma**2) * eps.numpy() + sigma * z.double().numpy()
    np.testing.assert_allclose(ours.double().numpy(), expected, rtol=1e-5, atol=5e-5)


def test_guidance_scale_one_is_a_single_conditional_call(model):
    calls = []
    handle = model.unet.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    try:
        x, t = torch.randn(1, 4, 8, 8), torch.tensor([11])
        concat, context = torch.randn(1, 8, 8, 8), torch.randn(1, 1, 32)
        with torch.no_grad():
            plain = model.guided_noise(x, t, concat, context, 1.0)
            model.guided_noise(x, t, concat, context, 1.5)
            torch.testing.assert_close(plain, model.predict_noise(x, t, concat, context))
    finally:
        handle.remove()
    assert calls == [1, 2, 1]  # unconditional and conditional share one batch of 2


def test_a_whole_completion_matches_the_reference_sampler(model, parts):
    """(a) the official flow at a tiny size: conditioning, x_T and one z per step from one
    generator in the sampler's order, guided DDIM, decode and clamp((x + 1)/2) — every piece
    re-derived in float64. 4 steps are the timesteps 1, 251, 501, 751, of which ddim.py's
    ddim_sampling keeps timesteps[:t_start] with t_start = -1: x_T enters at 501."""
    image, visible_mask = inputs()
    completion = model.complete(image, visible_mask, steps=4, guidance_scale=1.5, eta=1.0, n=2,
                                generator=torch.Generator().manual_seed(7))
    concat, context = reference_condition(model, parts, image, visible_mask)
    concat, context = concat.repeat(2, 1, 1, 1), context.repeat(2, 1, 1)
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(2, 4, 16, 16, generator=generator).double()
    a = reference_alphas_cumprod()
    for step, previous in ((501, 251), (251, 1), (1, 0)):
        z = torch.randn(2, 4, 16, 16, generator=generator).double()
        eps = reference_noise(parts["ema"], x, torch.full((2,), step), concat, context, 1.5)
        sigma = np.sqrt((1 - a[previous]) / (1 - a[step]) * (1 - a[step] / a[previous]))
        x0 = (x - np.sqrt(1 - a[step]) * eps) / np.sqrt(a[step])
        x = np.sqrt(a[previous]) * x0 + np.sqrt(1 - a[previous] - sigma**2) * eps + sigma * z
    np.testing.assert_allclose(completion.latents.flatten(0, 1).double().numpy(), x.numpy(), rtol=1e-4, atol=2e-4)
    with torch.no_grad():
        decoded = model.vae.decoder(model.vae.post_quant_conv(completion.latents.flatten(0, 1) / 0.18215))
    np.testing.assert_allclose(completion.image.flatten(0, 1).numpy(), ((decoded + 1) / 2).clamp(0, 1).numpy(),
                               atol=1e-6)
    # all four steps, x_T entering at 751, when asked
    every = model.complete(image, visible_mask, steps=4, n=2, generator=torch.Generator().manual_seed(7),
                           official_steps=False)
    assert not torch.allclose(every.latents, completion.latents, atol=1e-3)


def test_completion_end_to_end_shapes_range_and_seeds(model):
    """(d) a completion on the CPU with tiny random weights: shape, range, repeatable."""
    image, visible_mask = inputs(batch=2)
    run = dict(steps=2, guidance_scale=1.5, n=2)
    first = model.complete(image, visible_mask, generator=torch.Generator().manual_seed(0), **run)
    again = model.complete(image, visible_mask, generator=torch.Generator().manual_seed(0), **run)
    other = model.complete(image, visible_mask, generator=torch.Generator().manual_seed(1), **run)
    assert first.image.shape == (2, 2, 3, 32, 32) and first.latents.shape == (2, 2, 4, 16, 16)
    assert first.image.dtype == torch.float32 and 0 <= first.image.min() and first.image.max() <= 1
    assert torch.equal(first.image, again.image) and not torch.equal(first.image, other.image)
    assert not torch.equal(first.latents[0], first.latents[1])  # each sample from its own noise


def test_bad_inputs_fail_clearly(model):
    image, visible_mask = inputs()
    cases = [
        ((image, visible_mask[:, :, :16]), "visible_mask must have shape"),
        ((image[..., :28], visible_mask[..., :28]), "multiples of 8"),
        ((image * 2, visible_mask), r"image must lie in \[0, 1\]"),
        ((image, visible_mask * float("nan")), "visible_mask holds NaN"),
        ((image, torch.zeros_like(visible_mask)), "visible_mask is empty"),
        ((image[:, :1], visible_mask), r"\(B, 3, H, W\)"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            model.complete(*args, steps=1)
    with pytest.raises(ValueError, match="n must be"):
        model.complete(image, visible_mask, steps=1, n=0)


def test_wrong_checkpoints_fail_clearly(parts, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.ckpt"):
        Pix2Gestalt.from_checkpoint(tmp_path / "nowhere.ckpt", TINY_CONFIG)
    state = lightning_state_dict(parts)
    no_projection = write_lightning_checkpoint(tmp_path / "a.ckpt", {k: v for k, v in state.items()
                                                                       if not k.startswith("cc_projection.")})
    with pytest.raises(ValueError, match=r"a.ckpt: not a pix2gestalt checkpoint; no key starts with 'cc_projection.'"):
        Pix2Gestalt.from_checkpoint(no_projection, TINY_CONFIG)
    other_schedule = write_lightning_checkpoint(tmp_path / "b.ckpt", lightning_state_dict(
        parts, schedule=schedule_buffers(start=0.0001, end=0.02)))
    with pytest.raises(ValueError, match="b.ckpt: its alphas_cumprod is not the schedule"):
        Pix2Gestalt.from_checkpoint(other_schedule, TINY_CONFIG)
    no_ema = write_lightning_checkpoint(tmp_path / "c.ckpt", lightning_state_dict(parts, ema=False))
    with pytest.raises(ValueError, match="c.ckpt: no moving average"):
        Pix2Gestalt.from_checkpoint(no_ema, TINY_CONFIG, ema=True)
    Pix2Gestalt.from_checkpoint(no_ema, TINY_CONFIG)  # by default the raw weights of a file without averages
    with pytest.raises(ValueError, match="c.ckpt: UNet weights do not match"):
        Pix2Gestalt.from_checkpoint(no_ema)  # the released sizes for a tiny file
    write_hostile_checkpoint(tmp_path / "d.ckpt", tmp_path / "ran")
    with pytest.raises(ValueError, match="d.ckpt was not loaded"):
        Pix2Gestalt.from_checkpoint(tmp_path / "d.ckpt", TINY_CONFIG)
    assert not (tmp_path / "ran").exists()


def test_tiny_model_runs_and_leaves_the_callers_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model = tiny_pix2gestalt(seed=1)
    assert torch.equal(torch.rand(3), expected)
    image, visible_mask = inputs(size=16)
    out = model.complete(image, visible_mask, steps=2, generator=torch.Generator().manual_seed(0))
    assert out.image.shape == (1, 1, 3, 16, 16) and model.size_multiple == 8
    with pytest.raises(ValueError, match="cc_projection must map"):
        Pix2Gestalt(model.unet, model.vae, model.clip, torch.nn.Linear(5, 32))
