"""DepthFM / Amodal-DepthFM on diffusers: loading the official checkpoint, zero-initialised
guidance, sampling, alignment, saving and loading, clear errors. Tiny configs only."""
import hashlib
import logging
import warnings

import numpy as np
import pytest
import torch

from amodal.models.autoencoders import PixelAutoencoder, SDAutoencoder, SpaceToDepthAutoencoder
from amodal.models.depthfm import AmodalDepthFM, DepthFM, tiny_amodal_depthfm
from amodal.models.ldm_convert import tiny_ldm_hparams, write_depthfm_checkpoint
from depthfm_testdata import inputs, randomised_unet, tiny_depthfm, tiny_sd_vae
from device_testing import refuse_foreign_generators
from hub_testdata import add_to_cache, folder_files


def test_official_format_checkpoint_loads_strictly_and_computes_the_same(tmp_path):
    hparams = tiny_ldm_hparams()
    unet = randomised_unet(hparams, seed=3)
    embedding = torch.randn(1, 5, hparams["context_dim"])
    path = write_depthfm_checkpoint(tmp_path / "depthfm-v1.ckpt", unet, embedding, hparams)
    model = DepthFM.from_checkpoint(path, vae=PixelAutoencoder(4)).eval()
    assert model.noising_step == 400 and torch.equal(model.empty_text_embedding, embedding)
    x, cond, t = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), torch.tensor([0.1, 0.7])
    with torch.no_grad():
        expected = unet(torch.cat([x, cond], 1), t, encoder_hidden_states=embedding.expand(2, -1, -1)).sample
        torch.testing.assert_close(model.velocity(x, t, cond), expected, rtol=0, atol=0)


def test_wrong_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        DepthFM.from_checkpoint(tmp_path / "missing.ckpt", vae=PixelAutoencoder())
    torch.save({"model": {"pretrained.cls_token": torch.zeros(1)}}, tmp_path / "dav2.pth")
    with pytest.raises(ValueError, match="not a DepthFM checkpoint.*ldm_hparams"):
        DepthFM.from_checkpoint(tmp_path / "dav2.pth", vae=PixelAutoencoder())
    hparams = tiny_ldm_hparams()
    unet = randomised_unet(hparams)
    write_depthfm_checkpoint(tmp_path / "ok.ckpt", unet, torch.zeros(1, 2, 16), hparams)
    ckpt = torch.load(tmp_path / "ok.ckpt", weights_only=True)
    del ckpt["state_dict"]["out.2.weight"]
    torch.save(ckpt, tmp_path / "truncated.ckpt")
    with pytest.raises(ValueError, match=r"missing \['out.2.weight'\]"):
        DepthFM.from_checkpoint(tmp_path / "truncated.ckpt", vae=PixelAutoencoder())
    ckpt = torch.load(tmp_path / "ok.ckpt", weights_only=True)
    ckpt["ldm_hparams"] = {**hparams, "context_dim": 24}  # weights of another width
    torch.save(ckpt, tmp_path / "mismatch.ckpt")
    with pytest.raises(ValueError, match="size mismatch"):
        DepthFM.from_checkpoint(tmp_path / "mismatch.ckpt", vae=PixelAutoencoder())
    with pytest.raises(ValueError, match="needs Stable Diffusion's VAE"):
        DepthFM.from_checkpoint(tmp_path / "ok.ckpt")


def test_zero_initialised_guidance_reproduces_depthfm_for_any_mask_and_depth():
    base = tiny_depthfm()
    amodal = AmodalDepthFM.from_depthfm(base)
    assert amodal.unet.config.in_channels == 10 and base.unet.config.in_channels == 8
    image, mask, observed, _ = inputs()
    for seed in range(2):
        g = torch.Generator().manual_seed(seed)
        mask_r, observed_r = (torch.rand(mask.shape, generator=g) > 0.5).float(), torch.rand(observed.shape, generator=g)
        ours = amodal.sample(image, amodal_mask=mask_r, observed_depth=observed_r, n=2, steps=2,
                             generator=torch.Generator().manual_seed(9), align=False)
        ref = base.sample(image, n=2, steps=2, generator=torch.Generator().manual_seed(9))
        torch.testing.assert_close(ours.samples, ref.samples, rtol=0, atol=1e-6)
    # and the guidance does matter once its weights are not zero
    with torch.no_grad():
        amodal.unet.conv_in.weight[:, 8:] = 0.5
    moved = amodal.sample(image, amodal_mask=mask, observed_depth=observed, n=1, steps=2,
                          generator=torch.Generator().manual_seed(9), align=False)
    assert (moved.samples - ref.samples[:1]).abs().max() > 1e-3


def test_guidance_is_nearest_downsampled_in_order_mask_then_depth():
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 0, 0] = 1  # the top-left pixel of each 2×2 cell is what nearest keeps
    depth = torch.arange(64.0).view(1, 1, 8, 8) / 63
    g_mask, g_depth = model.guidance((4, 4), amodal_mask=mask, observed_depth=depth)
    assert g_mask[0, 0, 0, 0] == 1 and g_mask.sum() == 1
    torch.testing.assert_close(g_depth[0, 0], depth[0, 0, ::2, ::2])


def test_depth_codec_round_trips_with_the_pixel_autoencoder():
    model = DepthFM(randomised_unet(tiny_ldm_hparams()), PixelAutoencoder(4, 1), torch.zeros(1, 1, 16))
    depth = torch.rand(2, 1, 8, 8)
    latent = model.encode_depth(depth)
    torch.testing.assert_close(latent[:, :3], ((1 - depth) * 2 - 1).expand(-1, 3, -1, -1))
    torch.testing.assert_close(model.decode_depth(latent), depth)


def test_sampling_is_repeatable_and_samples_are_independent():
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())
    image, mask, observed, visible = inputs()
    run = lambda seed: model.sample(image, amodal_mask=mask, observed_depth=observed, visible_mask=visible,  # noqa: E731
                                    n=3, steps=2, generator=torch.Generator().manual_seed(seed))
    a, b, c = run(0), run(0), run(1)
    assert a.samples.shape == (3, 2, 1, 16, 16) and a.mean.shape == a.spread.shape == (2, 1, 16, 16)
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    assert (a.samples[0] - a.samples[1]).abs().max() > 1e-4  # not one sample repeated
    samples = a.samples.double().numpy()  # float64 numpy reference: mean and population std
    np.testing.assert_allclose(a.mean.numpy(), samples.mean(0), atol=1e-6)
    np.testing.assert_allclose(a.spread.numpy(), samples.std(0), atol=1e-6)


def test_alignment_is_least_squares_to_observed_depth_on_visible_pixels():
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())
    image, mask, observed, visible = inputs(batch=1)
    raw = model.sample(image, amodal_mask=mask, observed_depth=observed, n=2, steps=2,
                       generator=torch.Generator().manual_seed(5), align=False)
    aligned = model.sample(image, amodal_mask=mask, observed_depth=observed, visible_mask=visible, n=2, steps=2,
                           generator=torch.Generator().manual_seed(5))
    v = visible[0, 0].numpy() > 0
    for k in range(2):
        p = raw.samples[k, 0, 0].double().numpy()
        design = np.stack([p[v], np.ones(v.sum())], 1)
        (s, t), *_ = np.linalg.lstsq(design, observed[0, 0].double().numpy()[v], rcond=None)
        np.testing.assert_allclose(aligned.samples[k, 0, 0].numpy(), s * p + t, atol=1e-5)
    with pytest.raises(ValueError, match="visible_mask"):
        model.sample(image, amodal_mask=mask, observed_depth=observed)
    shifted = model.sample(image, amodal_mask=mask, observed_depth=observed, visible_mask=visible, n=2, steps=2,
                           generator=torch.Generator().manual_seed(5), align="shift")
    for k in range(2):  # the shift alone: the mean visible difference to D_o added, the relief kept
        p = raw.samples[k, 0, 0].double().numpy()
        offset = np.mean(observed[0, 0].double().numpy()[v] - p[v])
        np.testing.assert_allclose(shifted.samples[k, 0, 0].numpy(), p + offset, atol=1e-5)
    with pytest.raises(ValueError, match="align must be"):
        model.sample(image, amodal_mask=mask, observed_depth=observed, visible_mask=visible, align="scale")


def test_bad_inputs_fail_clearly():
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())
    image, mask, observed, visible = inputs()
    with pytest.raises(ValueError, match="amodal_mask must have shape"):
        model.sample(image, amodal_mask=mask[:, :, :8], observed_depth=observed, align=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.sample(image, amodal_mask=mask, observed_depth=observed * 2, align=False)
    with pytest.raises(ValueError, match="empty"):
        model.sample(image, amodal_mask=torch.zeros_like(mask), observed_depth=observed, align=False)
    with pytest.raises(ValueError, match="observed_depth holds NaN"):
        model.sample(image, amodal_mask=mask, observed_depth=observed.masked_fill(mask > 0, float("nan")), align=False)
    with pytest.raises(ValueError, match=r"visible_mask must lie in \[0, 1\]"):
        model.sample(image, amodal_mask=mask, observed_depth=observed, visible_mask=visible * 2)
    with pytest.raises(ValueError, match="target_depth must have shape"):
        model.training_loss(image, observed[:1], amodal_mask=mask, observed_depth=observed)
    with pytest.raises(ValueError, match="multiples of 4"):
        model.sample(image[..., :14, :14], amodal_mask=mask[..., :14, :14], observed_depth=observed[..., :14, :14],
                     align=False)
    with pytest.raises(ValueError, match="10 input channels"):
        AmodalDepthFM(tiny_depthfm().unet, PixelAutoencoder(), torch.zeros(1, 1, 16))


def test_save_and_load_round_trip(tmp_path):
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())
    with torch.no_grad():
        model.unet.conv_in.weight[:, 8:].normal_()
    model.save_pretrained(tmp_path / "amodal")
    loaded = AmodalDepthFM.from_pretrained(tmp_path / "amodal")
    assert loaded.unet.config.in_channels == 10 and loaded.autoencoder.downsample == 2
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    image, mask, observed, _ = inputs()
    sample = lambda m: m.sample(image, amodal_mask=mask, observed_depth=observed, n=2, steps=2,  # noqa: E731
                                align=False, generator=torch.Generator().manual_seed(0)).samples
    assert torch.equal(sample(model), sample(loaded))
    with pytest.raises(ValueError, match="holds a AmodalDepthFM"):
        DepthFM.from_pretrained(tmp_path / "amodal")
    with pytest.raises(FileNotFoundError, match="depthfm.json"):
        AmodalDepthFM.from_pretrained(tmp_path)


def test_training_loss_reaches_the_unet_and_counts_only_masked_latents():
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())
    image, mask, observed, _ = inputs()
    outputs = []
    model.unet.register_forward_hook(lambda module, args, out: outputs.append(out.sample) or out.sample.retain_grad())
    loss = model.training_loss(image, torch.rand_like(observed), amodal_mask=mask, observed_depth=observed,
                               generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.item() > 0 and model.unet.conv_in.weight.grad[:, 8:].abs().sum() > 0
    grad = outputs[0].grad  # d loss / d velocity, (B, 4, 8, 8)
    latent_mask = mask[..., ::2, ::2].expand_as(grad) > 0  # nearest downsampling keeps top-left pixels
    assert (grad[~latent_mask] == 0).all() and (grad[latent_mask] != 0).all()


def test_training_loss_is_flow_matching_on_the_documented_inputs():
    """UNet input = [(1−t)·x0 + t·x1, z_img, M_a↓, D_o↓] with x0 = 0.809·z_img + 0.588·ε and
    x1 = latent of (1 − D)·2 − 1 on 3 channels; loss = MSE to x1 − x0 over M_a↓, all rebuilt
    here in float64 from the same random draws (ε first, then t ~ U[0, 1))."""
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())  # PixelAutoencoder(4, downsample=2)
    image, mask, observed, visible = inputs()
    target = torch.rand(observed.shape, generator=torch.Generator().manual_seed(7))
    seen = {}
    model.unet.register_forward_hook(
        lambda module, args, kwargs, out: seen.update(x=args[0], t=args[1], v=out.sample), with_kwargs=True)
    loss = model.training_loss(image, target, amodal_mask=mask, observed_depth=observed,
                               generator=torch.Generator().manual_seed(3))

    def pool(x):  # the pixel autoencoder: 2×2 mean, zero 4th channel
        x = x.double().numpy()
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 2, 2, w // 2, 2).mean((3, 5))
        return np.concatenate([x, np.zeros((b, 4 - c, h // 2, w // 2))], 1)

    g = torch.Generator().manual_seed(3)
    eps = torch.randn(2, 4, 8, 8, generator=g).double().numpy()
    t = torch.rand(2, generator=g).double().numpy()
    z_img = pool(image * 2 - 1)
    x0 = np.cos(0.2 * np.pi) * z_img + np.sin(0.2 * np.pi) * eps  # √ᾱ, √(1−ᾱ) at step 400 of 1000
    x1 = pool(((1 - target) * 2 - 1).repeat(1, 3, 1, 1))
    tt = t[:, None, None, None]
    x = seen["x"].detach().double().numpy()
    np.testing.assert_allclose(seen["t"].double().numpy(), t, atol=1e-7)
    np.testing.assert_allclose(x[:, :4], (1 - tt) * x0 + tt * x1, atol=1e-4)
    np.testing.assert_allclose(x[:, 4:8], z_img, atol=1e-6)
    np.testing.assert_allclose(x[:, 8], mask[:, 0, ::2, ::2].numpy(), atol=0)
    np.testing.assert_allclose(x[:, 9], observed[:, 0, ::2, ::2].numpy(), atol=1e-7)
    latent_mask = np.broadcast_to(mask[:, :, ::2, ::2].numpy() > 0, x0.shape)
    error = (seen["v"].detach().double().numpy() - (x1 - x0)) ** 2
    assert loss.item() == pytest.approx(error[latent_mask].mean(), rel=1e-4)
    # ours: the hidden pixels weigh 1 + w, the same draws (same generator seed) otherwise
    weighted = model.training_loss(image, target, amodal_mask=mask, observed_depth=observed, visible_mask=visible,
                                   hidden_weight=2.0, generator=torch.Generator().manual_seed(3))
    hidden = (mask[:, :, ::2, ::2] > 0) & (visible[:, :, ::2, ::2] <= 0)
    assert hidden.any() and (mask[:, :, ::2, ::2] > 0).logical_and(~hidden).any()
    weights = latent_mask * (1 + 2.0 * np.broadcast_to(hidden.numpy(), x0.shape))
    assert weighted.item() == pytest.approx((error * weights).sum() / weights.sum(), rel=1e-4)
    assert weighted.item() != pytest.approx(loss.item(), rel=1e-3)
    with pytest.raises(ValueError, match="needs visible_mask"):
        model.training_loss(image, target, amodal_mask=mask, observed_depth=observed, hidden_weight=1.0)
    with pytest.raises(ValueError, match="≥ 0"):
        model.training_loss(image, target, amodal_mask=mask, observed_depth=observed, visible_mask=visible,
                            hidden_weight=-1.0)


def test_guidance_maps_are_keyword_only_so_a_depthfm_style_call_cannot_bind_them_wrongly():
    base = tiny_depthfm()
    model = AmodalDepthFM.from_depthfm(base)
    image, mask, observed, visible = inputs()
    target = torch.rand(observed.shape, generator=torch.Generator().manual_seed(1))
    # DepthFM's positional style, and Amodal-DepthFM's former order, both refused outright
    with pytest.raises(TypeError):
        model.training_loss(image, target, mask, observed)
    with pytest.raises(TypeError):
        model.training_loss(image, mask, observed, target)
    with pytest.raises(TypeError):
        model.sample(image, 2)
    with pytest.raises(TypeError):
        model.sample(image, mask, observed)
    with pytest.raises(TypeError):
        base.training_loss(image, target, mask)
    with pytest.raises(TypeError):
        base.sample(image, 2)
    # keyword calls work for both classes and bind each map to its meaning: with its guidance
    # weights at zero, Amodal-DepthFM's loss on M_a is DepthFM's loss with loss_mask = M_a.
    generator = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    ours = model.training_loss(image, target, amodal_mask=mask, observed_depth=observed, generator=generator())
    ref = base.training_loss(image, target, loss_mask=mask, generator=generator())
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    samples = model.sample(image, amodal_mask=mask, observed_depth=observed, visible_mask=visible, n=2, steps=1,
                           generator=generator(), align=False).samples
    torch.testing.assert_close(samples, base.sample(image, n=2, steps=1, generator=generator()).samples,
                               rtol=0, atol=1e-6)


READ_BACKS = ("__bool__", "item", "tolist", "__float__", "__int__", "__index__", "numpy")


@pytest.mark.slow
def test_inputs_are_checked_with_one_read_back_and_the_velocity_compiles_whole(monkeypatch):
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())
    image, mask, observed, _ = inputs()
    reads = []
    for name in READ_BACKS:  # every way a tensor's value reaches Python (a device sync on a GPU)
        def counted(self, *args, _original=getattr(torch.Tensor, name), _name=name, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    model.sample(image, amodal_mask=mask, observed_depth=observed, n=2, steps=2, align=False)
    assert reads == ["tolist"]  # amodal.models.checks.check_guidance, once; nothing per Euler step
    reads.clear()
    model.training_loss(image, observed, amodal_mask=mask, observed_depth=observed)
    assert reads == ["tolist", "__bool__"]  # the guidance check, and the loss's empty-mask check at latent size
    reads.clear()
    x, t, condition = torch.randn(2, 4, 8, 8), torch.tensor([0.1, 0.7]), torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        eager = model.velocity(x, t, condition)
        assert reads == []
        compiled = torch.compile(model.velocity, backend="eager", fullgraph=True)(x, t, condition)
    torch.testing.assert_close(compiled, eager)


def test_under_bf16_autocast_the_ode_state_and_the_outputs_stay_float32():
    hparams = tiny_ldm_hparams()
    base = DepthFM(randomised_unet(hparams), SDAutoencoder(tiny_sd_vae()), torch.zeros(1, 2, hparams["context_dim"]))
    model = AmodalDepthFM.from_depthfm(base)  # SD's VAE: its latents come out of autocast in bf16
    image, mask, observed, visible = inputs(batch=1, size=8)
    seen = []
    velocity = model.velocity
    model.velocity = lambda x, t, condition: seen.append((x.dtype, t.dtype)) or velocity(x, t, condition)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.unet(torch.zeros(1, 10, 8, 8), torch.zeros(1), base.empty_text_embedding).sample.dtype \
            == torch.bfloat16  # autocast does reach the UNet
        out = model.sample(image, amodal_mask=mask, observed_depth=observed, visible_mask=visible, n=2, steps=3)
        loss = model.training_loss(image, observed, amodal_mask=mask, observed_depth=observed)
    assert seen == [(torch.float32, torch.float32)] * 4  # three Euler steps, one loss
    assert out.samples.dtype == out.mean.dtype == out.spread.dtype == loss.dtype == torch.float32
    assert np.isfinite(out.mean.numpy()).all()


def test_sampling_and_the_loss_follow_the_models_device(monkeypatch):
    # `meta` stands for a GPU; a CPU generator (the notebooks' and the toy trainer's) must still work
    refuse_foreign_generators(monkeypatch)  # as CUDA does
    monkeypatch.setattr("amodal.models.depthfm.check_guidance", lambda *maps: None)  # meta values cannot be read
    base = tiny_depthfm().to("meta")
    model = AmodalDepthFM.from_depthfm(base)
    image, mask, observed, _ = (x.to("meta") for x in inputs())
    out = model.sample(image, amodal_mask=mask, observed_depth=observed, n=2, steps=2, align=False,
                       generator=torch.Generator().manual_seed(0))
    assert {x.device.type for x in (out.samples, out.mean, out.spread)} == {"meta"}
    assert base.training_loss(image, observed, generator=torch.Generator().manual_seed(0)).device.type == "meta"


def test_tiny_model_is_seeded_without_touching_cuda(monkeypatch):
    # as on a GPU machine: fork_rng() with no device list would save and restore CUDA's RNG,
    # creating a CUDA context even for CPU work (and failing in forked data-loader workers)
    def refuse(name):
        def touched(*args, **kwargs):
            raise AssertionError(f"torch.cuda.{name} called")
        return touched
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for name in ("get_rng_state", "set_rng_state", "init"):
        monkeypatch.setattr(torch.cuda, name, refuse(name))
    global_state = torch.get_rng_state()
    a, b, c = tiny_amodal_depthfm(seed=0), tiny_amodal_depthfm(seed=0), tiny_amodal_depthfm(seed=1)
    assert torch.equal(torch.get_rng_state(), global_state)  # the caller's random stream is left alone
    assert a.state_dict().keys() == c.state_dict().keys()
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.unet.conv_in.weight, c.unet.conv_in.weight)
    assert not torch.equal(a.empty_text_embedding, c.empty_text_embedding)


def folder_bytes(folder):
    """Every file under ``folder`` and the SHA-256 of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("crash_in", ["embedding", "vae"])
def test_a_save_that_crashes_midway_leaves_the_previous_model_whole(tmp_path, monkeypatch, crash_in):
    hparams = tiny_ldm_hparams()
    old = AmodalDepthFM.from_depthfm(DepthFM(randomised_unet(hparams, seed=1), SDAutoencoder(tiny_sd_vae(1)),
                                             torch.zeros(1, 2, hparams["context_dim"])))
    new = AmodalDepthFM.from_depthfm(DepthFM(randomised_unet(hparams, seed=2), SDAutoencoder(tiny_sd_vae(2)),
                                             torch.ones(1, 2, hparams["context_dim"])))
    old.save_pretrained(tmp_path / "model")
    before = folder_bytes(tmp_path / "model")
    import amodal.models.depthfm as depthfm_module

    save_file = depthfm_module.save_file

    def crash(*args, **kwargs):  # after the UNet is written: a half-saved model if written in place
        raise OSError("disk full")
    if crash_in == "embedding":
        monkeypatch.setattr(depthfm_module, "save_file",
                            lambda tensors, *a, **k: crash() if "empty_text_embedding" in tensors
                            else save_file(tensors, *a, **k))
    else:
        monkeypatch.setattr(new.autoencoder.vae, "save_pretrained", crash)
    with pytest.raises(OSError, match="disk full"):
        new.save_pretrained(tmp_path / "model")
    assert folder_bytes(tmp_path / "model") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left
    loaded = AmodalDepthFM.from_pretrained(tmp_path / "model")
    for key, value in old.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    monkeypatch.undo()
    new.save_pretrained(tmp_path / "model")  # a save that completes replaces the model whole
    assert torch.equal(AmodalDepthFM.from_pretrained(tmp_path / "model").unet.conv_in.weight, new.unet.conv_in.weight)


def test_saving_over_a_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a saved DepthFM"):
        tiny_depthfm().save_pretrained(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_loading_a_saved_model_gives_no_warning(tmp_path):
    hparams = tiny_ldm_hparams()
    model = AmodalDepthFM.from_depthfm(DepthFM(randomised_unet(hparams), SDAutoencoder(tiny_sd_vae()),
                                               torch.zeros(1, 2, hparams["context_dim"])))
    model.save_pretrained(tmp_path / "model")
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    diffusers_logger = logging.getLogger("diffusers")  # diffusers' loggers do not propagate to the root
    level = diffusers_logger.level
    diffusers_logger.setLevel(logging.WARNING)
    diffusers_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            AmodalDepthFM.from_pretrained(tmp_path / "model")
    finally:
        diffusers_logger.removeHandler(handler)
        diffusers_logger.setLevel(level)
    assert [r.getMessage() for r in records] == []  # e.g. the advice to install `accelerate`
    assert [str(w.message) for w in caught] == []


def test_time_grid_draws_t_on_the_official_400_point_grid():
    """time_grid=400: t = ⌊400·u⌋ / 400 for the same uniform draw u (the official trainer's grid)."""
    model = AmodalDepthFM.from_depthfm(tiny_depthfm())
    image, mask, observed, _ = inputs()
    seen = {}
    model.unet.register_forward_hook(lambda module, args, kwargs, out: seen.update(t=args[1]), with_kwargs=True)
    model.training_loss(image, observed, amodal_mask=mask, observed_depth=observed,
                        generator=torch.Generator().manual_seed(3), time_grid=400)
    g = torch.Generator().manual_seed(3)
    torch.randn(2, 4, 8, 8, generator=g)  # ε is drawn first
    u = torch.rand(2, generator=g).double().numpy()
    np.testing.assert_allclose(seen["t"].double().numpy(), np.floor(400 * u) / 400, atol=1e-7)
    assert np.all(np.round(seen["t"].double().numpy() * 400, 4) % 1 == 0)


def test_tiny_model_on_the_lossless_latent_saves_and_loads(tmp_path):
    pooled = tiny_amodal_depthfm(seed=0)
    assert pooled.unet.config.in_channels == 10 and isinstance(pooled.autoencoder, PixelAutoencoder)
    model = tiny_amodal_depthfm(downsample=2, seed=0, latent="space-to-depth")
    assert isinstance(model.autoencoder, SpaceToDepthAutoencoder)
    assert (model.unet.config.in_channels, model.unet.config.out_channels) == (2 * 12 + 2, 12)
    # depth survives the codec exactly (up to float rounding), edges included
    depth = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(model.decode_depth(model.encode_depth(depth)), depth, rtol=0, atol=1e-6)
    model.save_pretrained(tmp_path / "m")
    loaded = AmodalDepthFM.from_pretrained(tmp_path / "m")
    assert isinstance(loaded.autoencoder, SpaceToDepthAutoencoder) and loaded.autoencoder.downsample == 2
    image, mask, observed, _ = inputs()
    sample = lambda m: m.sample(image, amodal_mask=mask, observed_depth=observed, n=2, steps=2,  # noqa: E731
                                align=False, generator=torch.Generator().manual_seed(0)).samples
    assert torch.equal(sample(model), sample(loaded))
    with pytest.raises(ValueError, match="latent must be one of"):
        tiny_amodal_depthfm(latent="vae")


def test_depthfm_checkpoint_and_saved_model_load_by_hub_id(hub_cache, tmp_path):
    """DepthFM has no hub repository of its authors: a copy's id reads depthfm-v1.ckpt; a saved
    Amodal-DepthFM pushed as a repository loads by its id, offline from the cache."""
    hparams = tiny_ldm_hparams()
    embedding = torch.randn(1, 5, hparams["context_dim"])
    write_depthfm_checkpoint(tmp_path / "depthfm-v1.ckpt", randomised_unet(hparams, seed=4), embedding, hparams)
    add_to_cache(hub_cache, "someone/depthfm-copy", {"depthfm-v1.ckpt": tmp_path / "depthfm-v1.ckpt"})
    base = DepthFM.from_checkpoint("someone/depthfm-copy", vae=PixelAutoencoder(4))
    assert torch.equal(base.empty_text_embedding, embedding)

    model = AmodalDepthFM.from_depthfm(tiny_depthfm(seed=6))
    model.save_pretrained(tmp_path / "saved")
    add_to_cache(hub_cache, "someone/amodal-depthfm", folder_files(tmp_path / "saved"))
    loaded = AmodalDepthFM.from_pretrained("someone/amodal-depthfm")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(FileNotFoundError, match="hf download someone/other depthfm-v1.ckpt"):
        DepthFM.from_checkpoint("someone/other", vae=PixelAutoencoder(4))
