"""The autoencoders: SD's VAE as DepthFM uses it, found in a diffusers folder; the pixel-space stand-ins."""
import numpy as np
import pytest
import torch

from amodal.models.autoencoders import (SD_VAE_DDCONFIG, PixelAutoencoder, SDAutoencoder, SpaceToDepthAutoencoder,
                                        autoencoder_from_spec, build_vae, load_autoencoder, vae_from_ldm)
from depthfm_testdata import tiny_sd_vae
from hub_testdata import add_to_cache, folder_files
from ldm_reference import ldm_vae_shapes, random_weights


def test_sd_autoencoder_encodes_the_scaled_posterior_mean_and_decodes_back(tmp_path):
    vae = tiny_sd_vae()
    vae.save_pretrained(tmp_path / "vae")
    loaded = load_autoencoder(tmp_path)  # finds the vae/ subfolder
    assert isinstance(loaded, SDAutoencoder) and loaded.downsample == 1
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        # The posterior is a diagonal Gaussian whose parameters are the 2·4 channels out of
        # quant_conv, means first, log-variances second (LDM's DiagonalGaussianDistribution);
        # its mode is the mean, and SD scales latents by 0.18215 (its config's scale_factor).
        moments = vae.quant_conv(vae.encoder(x)).double()
        mean, log_variance = moments[:, :4], moments[:, 4:]
        assert log_variance.exp().max() > 1e-3  # a real spread: a sample would not equal the mean
        np.testing.assert_allclose(loaded.encode(x).double().numpy(), 0.18215 * mean.numpy(), rtol=1e-5, atol=1e-6)
        z = torch.randn(1, 4, 8, 8)
        np.testing.assert_allclose(loaded.decode(z).numpy(), vae.decoder(vae.post_quant_conv(z / 0.18215)).numpy(),
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(FileNotFoundError):
        load_autoencoder(tmp_path / "nowhere")


def test_space_to_depth_autoencoder_is_lossless_and_puts_each_block_in_channels():
    autoencoder = SpaceToDepthAutoencoder(2)
    assert (autoencoder.latent_channels, autoencoder.downsample) == (12, 2)
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    z = autoencoder.encode(x)
    assert z.shape == (2, 12, 2, 3)
    # channel c·4 + 2·i + j of latent pixel (h, w) is colour c of pixel (2h + i, 2w + j), by hand
    for c, i, j, h, w in [(0, 0, 0, 0, 0), (1, 1, 0, 1, 2), (2, 1, 1, 0, 1)]:
        assert z[1, c * 4 + 2 * i + j, h, w] == x[1, c, 2 * h + i, 2 * w + j]
    assert torch.equal(autoencoder.decode(z), x)
    rebuilt = autoencoder_from_spec(autoencoder.spec(), None, None)
    assert isinstance(rebuilt, SpaceToDepthAutoencoder) and rebuilt.downsample == 2
    assert load_autoencoder(autoencoder) is autoencoder
    with pytest.raises(ValueError, match="downsample"):
        SpaceToDepthAutoencoder(0)


def test_the_pooling_autoencoder_blurs_what_space_to_depth_keeps():
    # a 1-pixel bright column: pooling by 4 spreads it over the block, space-to-depth keeps it
    x = torch.zeros(1, 3, 8, 8)
    x[..., 5] = 1.0
    pooled = PixelAutoencoder(4, 4)
    assert float(pooled.decode(pooled.encode(x))[0, 0, 0, 5]) < 0.5
    s2d = SpaceToDepthAutoencoder(4)
    assert torch.equal(s2d.decode(s2d.encode(x)), x)


def test_an_ldm_vae_loads_from_its_official_names_and_ddconfig():
    ddconfig = {**SD_VAE_DDCONFIG, "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1}
    ldm = random_weights(ldm_vae_shapes(ddconfig), 0)  # names from LDM's Encoder / Decoder, not from a converter
    vae = vae_from_ldm({f"first_stage_model.{k}": v for k, v in ldm.items()}, ddconfig)
    assert vae.config.block_out_channels == (32, 64) and vae.config.layers_per_block == 1
    # by hand: LDM's resnets, 1×1-conv attention and reversed decoder levels in diffusers' places
    encoder, decoder = vae.encoder, vae.decoder
    assert torch.equal(encoder.down_blocks[1].resnets[0].conv_shortcut.weight, ldm["encoder.down.1.block.0.nin_shortcut.weight"])
    assert torch.equal(encoder.down_blocks[0].downsamplers[0].conv.weight, ldm["encoder.down.0.downsample.conv.weight"])
    assert torch.equal(decoder.mid_block.attentions[0].to_out[0].weight, ldm["decoder.mid.attn_1.proj_out.weight"][:, :, 0, 0])
    assert torch.equal(vae.decoder.up_blocks[1].resnets[1].norm2.bias, ldm["decoder.up.0.block.1.norm2.bias"])
    assert torch.equal(vae.decoder.up_blocks[0].upsamplers[0].conv.weight, ldm["decoder.up.1.upsample.conv.weight"])
    assert torch.equal(vae.post_quant_conv.weight, ldm["post_quant_conv.weight"])
    with pytest.raises(ValueError, match="vae.ckpt: not Stable Diffusion's VAE"):
        vae_from_ldm({k: v for k, v in ldm.items() if k != "quant_conv.bias"}, ddconfig, source="vae.ckpt")
    with pytest.raises(ValueError, match="not an SD-style VAE"):
        build_vae({**ddconfig, "attn_resolutions": [16]})
    with pytest.raises(ValueError, match="not an SD-style VAE"):
        build_vae(ddconfig, embed_dim=3)


def test_sd_vae_loads_by_hub_id_from_its_subfolder_or_a_repository_root(hub_cache, tmp_path):
    """The official DepthFM code reads runwayml/stable-diffusion-v1-5 with subfolder vae; its copy
    stable-diffusion-v1-5/stable-diffusion-v1-5 is laid out the same. A VAE repository of its own
    holds the diffusers files at its root."""
    vae = tiny_sd_vae(seed=2)
    vae.save_pretrained(tmp_path / "sd" / "vae")
    files = folder_files(tmp_path / "sd")
    assert set(files) == {"vae/config.json", "vae/diffusion_pytorch_model.safetensors"}
    add_to_cache(hub_cache, "stable-diffusion-v1-5/stable-diffusion-v1-5", files)
    add_to_cache(hub_cache, "someone/vae-ft", folder_files(tmp_path / "sd" / "vae"))
    expected = vae.state_dict()
    for spec in ("stable-diffusion-v1-5/stable-diffusion-v1-5", "someone/vae-ft"):
        loaded = load_autoencoder(spec)
        assert isinstance(loaded, SDAutoencoder)
        assert all(torch.equal(loaded.vae.state_dict()[k], v) for k, v in expected.items()), spec
    with pytest.raises(FileNotFoundError, match="hf download runwayml/stable-diffusion-v1-5 vae/config.json "
                                                "vae/diffusion_pytorch_model.safetensors"):
        load_autoencoder("runwayml/stable-diffusion-v1-5")
