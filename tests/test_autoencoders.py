"""The autoencoders: SD's VAE as DepthFM uses it, found in a diffusers folder."""
import pytest
import torch

from amodal.models.autoencoders import SDAutoencoder, load_autoencoder
from depthfm_testdata import tiny_sd_vae


def test_sd_autoencoder_scales_the_posterior_mode(tmp_path):
    vae = tiny_sd_vae()
    vae.save_pretrained(tmp_path / "vae")
    loaded = load_autoencoder(tmp_path)  # finds the vae/ subfolder
    assert isinstance(loaded, SDAutoencoder) and loaded.downsample == 1
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), vae.encode(x).latent_dist.mode() * 0.18215)
    with pytest.raises(FileNotFoundError):
        load_autoencoder(tmp_path / "nowhere")
