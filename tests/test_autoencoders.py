"""The autoencoders: SD's VAE as DepthFM uses it, found in a diffusers folder."""
import numpy as np
import pytest
import torch

from amodal.models.autoencoders import SDAutoencoder, load_autoencoder
from depthfm_testdata import tiny_sd_vae


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
