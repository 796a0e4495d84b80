"""The autoencoders: SD's VAE as DepthFM uses it, found in a diffusers folder."""
import pytest
import torch

from amodal.models.autoencoders import SDAutoencoder, load_autoencoder


def test_sd_autoencoder_scales_the_posterior_mode(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(32,), down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=32, layers_per_block=1)
    vae.save_pretrained(tmp_path / "vae")
    loaded = load_autoencoder(tmp_path)  # finds the vae/ subfolder
    assert isinstance(loaded, SDAutoencoder) and loaded.downsample == 1
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), vae.encode(x).latent_dist.mode() * 0.18215)
    with pytest.raises(FileNotFoundError):
        load_autoencoder(tmp_path / "nowhere")
