"""Shared fixtures for the DepthFM tests: the official hyper-parameters, tiny models
whose every parameter is random, and guidance inputs."""
import torch

from amodal.models.autoencoders import PixelAutoencoder
from amodal.models.depthfm import DepthFM
from amodal.models.ldm_convert import build_unet, tiny_ldm_hparams

DEPTHFM_HPARAMS = {  # as printed from depthfm-v1.ckpt in the official Amodal-DepthFM code
    "image_size": 32, "in_channels": 8, "out_channels": 4, "model_channels": 320,
    "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
    "num_heads": 8, "use_spatial_transformer": True, "use_linear_in_transformer": True,
    "transformer_depth": 1, "context_dim": 1024, "legacy": False,
}


def randomised_unet(hparams, seed=0):
    """A UNet with *every* parameter random (diffusers zero-initialises some, which would
    hide swapped or dropped weights)."""
    torch.manual_seed(seed)
    unet = build_unet(hparams)
    with torch.no_grad():
        for p in unet.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return unet.eval()


def tiny_depthfm(seed=0, hparams=None):
    hparams = hparams or tiny_ldm_hparams()
    unet = randomised_unet(hparams, seed)
    embedding = torch.randn(1, 3, hparams["context_dim"], generator=torch.Generator().manual_seed(seed))
    return DepthFM(unet, PixelAutoencoder(4, downsample=2), embedding).eval()


def inputs(batch=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=g)
    amodal = torch.zeros(batch, 1, size, size)
    amodal[:, :, 3:13, 2:14] = 1
    visible = amodal.clone()
    visible[:, :, :, 9:] = 0
    observed = torch.rand(batch, 1, size, size, generator=g)
    return image, amodal, observed, visible


def tiny_sd_vae(seed=0):
    """A one-level ``AutoencoderKL`` (SD's VAE class, downsampling 1) with random weights."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=(32,), down_block_types=("DownEncoderBlock2D",),
                         up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=32,
                         layers_per_block=1).eval()
