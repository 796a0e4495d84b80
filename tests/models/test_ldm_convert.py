"""LDM ⇄ diffusers: the official ldm_hparams give the SD-2 topology, names convert both ways
exactly (checked against LDM names written out by hand and diffusers' own converter),
official-format files (DepthFM's, and Lightning training checkpoints like pix2gestalt's)
read without running pickled code."""
import argparse

import numpy as np
import pytest
import torch

from amodal.models.ldm_convert import (
    LightningCallbackKey,
    build_unet,
    diffusers_to_ldm,
    ema_name,
    ldm_to_diffusers,
    read_depthfm_checkpoint,
    read_lightning_state_dict,
    tiny_ldm_hparams,
    unet_config_from_ldm,
    unet_state,
    write_depthfm_checkpoint,
)
from depthfm_testdata import DEPTHFM_HPARAMS, randomised_unet
from pickle_testdata import write_hostile_checkpoint
from pix2gestalt_testdata import write_lightning_checkpoint

# Three levels, two resnets per level, a level without attention: every naming path.
CONVERSION_HPARAMS = tiny_ldm_hparams(num_res_blocks=2, channel_mult=[1, 2, 2], attention_resolutions=[1, 2])


def test_depthfm_hparams_give_the_sd2_topology_in_diffusers_terms():
    config = unet_config_from_ldm(DEPTHFM_HPARAMS)
    assert config["down_block_types"] == ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    assert config["up_block_types"] == ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    assert config["block_out_channels"] == (320, 640, 1280, 1280)
    assert config["attention_head_dim"] == 8  # diffusers' legacy name for the number of heads
    assert (config["in_channels"], config["out_channels"], config["cross_attention_dim"]) == (8, 4, 1024)
    assert config["use_linear_projection"] and config["flip_sin_to_cos"] and config["freq_shift"] == 0
    assert config["layers_per_block"] == 2


@pytest.mark.parametrize("change", [{"use_scale_shift_norm": True}, {"num_classes": 10}, {"mystery": 1}])
def test_unsupported_hparams_fail_clearly(change):
    with pytest.raises(ValueError, match="ldm_hparams"):
        unet_config_from_ldm({**DEPTHFM_HPARAMS, **change})


def test_ldm_diffusers_conversion_round_trips_exactly():
    unet = randomised_unet(CONVERSION_HPARAMS)
    state = unet.state_dict()
    ldm = diffusers_to_ldm(state, unet.config)
    # names of the official LDM UNetModel layout (openaimodel.py), written out by hand
    for key in ("time_embed.0.weight", "time_embed.2.bias", "input_blocks.0.0.weight",
                "input_blocks.1.0.in_layers.0.weight", "input_blocks.1.0.emb_layers.1.weight",
                "input_blocks.1.1.proj_in.weight", "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
                "input_blocks.3.0.op.weight", "input_blocks.4.0.skip_connection.weight",
                "input_blocks.7.0.out_layers.3.weight", "middle_block.0.in_layers.2.weight",
                "middle_block.1.transformer_blocks.0.attn2.to_k.weight", "middle_block.2.out_layers.0.bias",
                "output_blocks.0.0.skip_connection.weight", "output_blocks.2.1.conv.weight",
                "output_blocks.5.2.conv.weight", "output_blocks.8.1.proj_out.bias", "out.0.weight", "out.2.bias"):
        assert key in ldm, key
    assert len(ldm) == len(state)
    back = ldm_to_diffusers(ldm, unet.config)  # diffusers' own converter
    assert set(back) == set(state)
    for key, value in state.items():
        assert torch.equal(back[key], value), key


def test_numpy_embedding_and_prefixed_keys_are_accepted(tmp_path):
    hparams = tiny_ldm_hparams()
    unet = randomised_unet(hparams)
    state = {"model.diffusion_model." + k: v for k, v in diffusers_to_ldm(unet.state_dict(), unet.config).items()}
    embedding = np.random.RandomState(0).randn(3, hparams["context_dim"]).astype(np.float32)
    torch.save({"noising_step": 400, "empty_text_embedding": embedding, "ldm_hparams": hparams,
                "state_dict": state}, tmp_path / "c.ckpt")
    ckpt = read_depthfm_checkpoint(tmp_path / "c.ckpt")
    assert ckpt["empty_text_embedding"].shape == (1, 3, hparams["context_dim"])
    assert all(not k.startswith("model.") for k in ckpt["state_dict"])


def test_a_hostile_ckpt_is_refused_and_runs_nothing(tmp_path):
    write_hostile_checkpoint(tmp_path / "depthfm-v1.ckpt", tmp_path / "ran")
    with pytest.raises(ValueError, match=r"depthfm-v1.ckpt was not loaded: .*posix.mkdir"):
        read_depthfm_checkpoint(tmp_path / "depthfm-v1.ckpt")
    assert not (tmp_path / "ran").exists()


def test_time_enters_the_sinusoidal_embedding_unscaled_cos_first():
    # official LDM timestep_embedding: [cos(t·f), sin(t·f)], f_i = 10000^(−i/half), t in [0, 1] as is
    unet = build_unet(tiny_ldm_hparams())
    t = np.array([0.0, 0.25, 1.0])
    half = unet.config.block_out_channels[0] // 2
    args = t[:, None] * np.exp(-np.log(10000) * np.arange(half) / half)[None]
    reference = np.concatenate([np.cos(args), np.sin(args)], 1)
    np.testing.assert_allclose(unet.time_proj(torch.tensor(t, dtype=torch.float32)).numpy(), reference, atol=1e-6)


def test_a_checkpoint_write_that_fails_leaves_the_old_file(tmp_path, monkeypatch):
    hparams = tiny_ldm_hparams()
    path = write_depthfm_checkpoint(tmp_path / "depthfm-v1.ckpt", randomised_unet(hparams), torch.zeros(1, 2, 16), hparams)
    before = path.read_bytes()
    save = torch.save

    def crash(obj, f, *args, **kwargs):  # half a file, then the disk is full
        save({"noising_step": 400}, f)
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        write_depthfm_checkpoint(path, randomised_unet(hparams, seed=1), torch.ones(1, 2, 16), hparams)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["depthfm-v1.ckpt"]


# ------------------------------------------------------------- Lightning checkpoints (pix2gestalt)


def test_a_lightning_14_checkpoint_reads_with_only_its_callback_class_allowed(tmp_path):
    state = {"model.diffusion_model.out.2.bias": torch.arange(3.0), "cc_projection.weight": torch.eye(2)}
    path = write_lightning_checkpoint(tmp_path / "epoch=000005.ckpt", state)
    loaded = read_lightning_state_dict(path)
    assert set(loaded) == set(state) and torch.equal(loaded["cc_projection.weight"], torch.eye(2))
    # the callbacks dict is keyed by Lightning's class, read as our inert stand-in
    with torch.serialization.safe_globals([(LightningCallbackKey,
                                            "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint")]):
        whole = torch.load(path, weights_only=True, map_location="cpu")
    assert list(whole["callbacks"]) == [LightningCallbackKey]
    # any other global is refused and named
    other = write_lightning_checkpoint(tmp_path / "other.ckpt", state, extra_globals=[argparse.Namespace(a=1)])
    with pytest.raises(ValueError, match=r"other.ckpt was not loaded: .*argparse.Namespace"):
        read_lightning_state_dict(other)
    torch.save({"weights": state}, tmp_path / "plain.ckpt")
    with pytest.raises(ValueError, match=r"plain.ckpt: not a Lightning checkpoint of a pix2gestalt model"):
        read_lightning_state_dict(tmp_path / "plain.ckpt", model="pix2gestalt")


def test_ema_weights_are_found_under_litemas_dotless_names():
    # the name pix2gestalt's main.py spells out when it widens the input convolution
    assert ema_name("input_blocks.0.0.weight") == "model_ema.diffusion_modelinput_blocks00weight"
    raw, average = torch.zeros(2), torch.ones(2)
    state = {"model.diffusion_model.out.2.bias": raw, "model_ema.diffusion_modelout2bias": average,
             "model_ema.decay": torch.tensor(0.9999), "first_stage_model.x": torch.zeros(1)}
    weights, used = unet_state(state)
    assert used and set(weights) == {"out.2.bias"} and weights["out.2.bias"] is average
    weights, used = unet_state(state, ema=False)
    assert not used and weights["out.2.bias"] is raw
    without = {k: v for k, v in state.items() if not k.startswith("model_ema.")}
    assert unet_state(without) == ({"out.2.bias": raw}, False)
    with pytest.raises(ValueError, match="x.ckpt: no moving average for 1 UNet weights, "
                                         "e.g. 'model_ema.diffusion_modelout2bias'"):
        unet_state(without, ema=True, source="x.ckpt")
    with pytest.raises(ValueError, match="no UNet weights"):
        unet_state({"first_stage_model.x": torch.zeros(1)})
