"""amodal.harness.standins: stand-in weights in the official formats, at a small size, read by
the project's loaders through the hub ids. The expected key names, shapes and file layout are
facts of the official files (MISSION.md, the official repositories), not of our writers; the
hub cache is checked with ``huggingface_hub``'s own reader, and the blob names with hashlib."""
import hashlib
import json
import os

import pytest
import torch
from huggingface_hub import try_to_load_from_cache
from safetensors import safe_open

from amodal.app.photo import load_sam
from amodal.harness.standins import (
    AMODAL_DAV2_REPO,
    DAV2_REPOS,
    SAM_REPO,
    VAE_REPO,
    cache_repo,
    write_dav2,
    write_standins,
)
from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2
from amodal.models.configs import TINY
from amodal.models.depthfm import AmodalDepthFM, DepthFM
from amodal.utils.torch_files import load_weights_only


def test_cache_repo_lays_files_out_as_huggingface_hub_reads_them(tmp_path):
    source = tmp_path / "weights.bin"
    source.write_bytes(b"stand-in bytes")
    snapshot = cache_repo(tmp_path / "hub", "org/name", {"sub/weights.bin": source})
    found = try_to_load_from_cache("org/name", "sub/weights.bin", cache_dir=tmp_path / "hub")
    assert found is not None and os.path.samefile(found, snapshot / "sub/weights.bin")
    assert os.path.realpath(found).endswith(hashlib.sha256(b"stand-in bytes").hexdigest())
    assert not source.exists()  # moved, not copied: the real-size files are gigabytes


def test_a_dav2_standin_is_a_plain_official_state_dict(tmp_path):
    path = write_dav2(tmp_path / "depth_anything_v2_vits.pth", "s", config=TINY)
    state = load_weights_only(path)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert {k.split(".")[0] for k in state} == {"pretrained", "depth_head"}
    # the official DINOv2 names: LayerScale gammas, the (unused) mask token, blocks by index
    assert {"pretrained.mask_token", "pretrained.blocks.0.ls1.gamma", "pretrained.cls_token"} <= set(state)
    model = DepthAnythingV2.from_pretrained(path, config=TINY).eval()
    with torch.no_grad():
        disparity = model(torch.rand(1, 3, 28, 42))
    assert disparity.min() > 0 and disparity.std() > 0   # not ReLU's constant 0: the builder can normalise it


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    return write_standins(tmp_path_factory.mktemp("standins"), "tiny", seed=3)


@pytest.fixture
def offline_cache(standins, monkeypatch):
    for name, value in standins.environment().items():
        monkeypatch.setenv(name, value)
    return standins


@pytest.mark.slow  # SAM has no small size: its ViT-B file is written at 375 MB
def test_every_standin_is_read_by_its_loader_through_its_hub_id(offline_cache):
    p = offline_cache.parameters
    assert p["DAV2_CHECKPOINT"] == DAV2_REPOS["l"] and p["AMODAL_DAV2_CHECKPOINT"] == AMODAL_DAV2_REPO
    assert p["VAE"] == VAE_REPO and (p["SAM_CHECKPOINT"], p["SAM_MODEL"]) == (SAM_REPO, "vit_b")
    assert DepthAnythingV2.from_pretrained(p["DAV2_CHECKPOINT"], config=TINY).config.depth == TINY.depth
    assert AmodalDAV2.from_pretrained(p["AMODAL_DAV2_CHECKPOINT"], config=TINY).config.depth == TINY.depth
    fm = DepthFM.from_checkpoint(p["DEPTHFM_CHECKPOINT"], vae=p["VAE"])
    amodal_fm = AmodalDepthFM.from_pretrained(p["AMODAL_DEPTHFM_CHECKPOINT"])
    assert fm.unet.config.in_channels == 8 and amodal_fm.unet.config.in_channels == 10  # + M_a, D_o
    assert load_sam(p["SAM_CHECKPOINT"], p["SAM_MODEL"]) is not None


@pytest.mark.slow
def test_standin_files_have_the_official_names_and_keys(offline_cache):
    cache = offline_cache.hub_cache
    amodal = try_to_load_from_cache(AMODAL_DAV2_REPO, "model.safetensors", cache_dir=cache)
    with safe_open(amodal, "pt") as file:
        keys = set(file.keys())
    assert {k.split(".")[0] for k in keys} == {"encoder"}
    assert {"encoder.pretrained.patch_embed_guidance.proj.weight", "encoder.depth_head.input_projection.0.0.weight",
            "encoder.depth_head.input_projection.0.1.weight"} <= keys
    config = json.loads(open(try_to_load_from_cache(AMODAL_DAV2_REPO, "config.json", cache_dir=cache)).read())
    assert config["encoder"] == "vitl"
    for repo, name in ((DAV2_REPOS["l"], "depth_anything_v2_vitl.pth"), (DAV2_REPOS["s"], "depth_anything_v2_vits.pth"),
                       (VAE_REPO, "vae/diffusion_pytorch_model.safetensors"), (VAE_REPO, "vae/config.json")):
        assert try_to_load_from_cache(repo, name, cache_dir=cache) is not None, (repo, name)
    # SAM ViT-B: patch 16, width 768 (segment-anything's build_sam_vit_b)
    sam = load_weights_only(try_to_load_from_cache(SAM_REPO, "checkpoints/sam_vit_b_01ec64.pth", cache_dir=cache))
    assert sam["image_encoder.patch_embed.proj.weight"].shape == (768, 3, 16, 16)
    # depthfm-v1.ckpt: the four entries of the released file; DepthFM's UNetModel loads state_dict as
    # it is, so its keys are the LDM UNet's own names, without the LatentDiffusion prefix
    ckpt = load_weights_only(offline_cache.parameters["DEPTHFM_CHECKPOINT"])
    assert set(ckpt) == {"noising_step", "empty_text_embedding", "ldm_hparams", "state_dict"}
    assert ckpt["noising_step"] == 400 and ckpt["empty_text_embedding"].shape[:2] == (1, 77)
    assert ckpt["state_dict"]["input_blocks.0.0.weight"].shape[1] == 8   # x_t and the image latent
    assert not any(k.startswith("model.") for k in ckpt["state_dict"])


@pytest.mark.slow
def test_written_standins_are_reused_and_a_missing_file_rewrites_them(standins, tmp_path_factory):
    folder = os.path.dirname(standins.hub_cache)
    again = write_standins(folder, "tiny", seed=3)
    assert again == standins
    first = next(name for name in standins.files if name.startswith("weights/"))
    os.remove(os.path.join(folder, first))
    assert write_standins(folder, "tiny", seed=3).files == standins.files
    assert os.path.isfile(os.path.join(folder, first))
    with pytest.raises(ValueError, match="size must be one of"):
        write_standins(folder, "huge")
