"""Checkpoint layouts: official DAV2 .pth, released Amodal-DAV2 safetensors, ours; strict errors."""
import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from amodal.models import checkpoints
from amodal.models.amodal_dav2 import TINY, AmodalDAV2, DepthAnythingV2

TINY_G = dataclasses.replace(TINY, swiglu=True)


@pytest.fixture(scope="module")
def dav2():
    torch.manual_seed(0)
    return DepthAnythingV2(TINY).eval()


@pytest.fixture(scope="module")
def amodal():
    torch.manual_seed(1)
    model = AmodalDAV2(TINY).eval()
    with torch.no_grad():
        model.encoder.patch_embed_guidance.proj.weight.normal_(0, 0.01)
    return model


def _inputs():
    torch.manual_seed(2)
    return torch.rand(1, 3, 84, 70), (torch.rand(1, 1, 84, 70) > 0.5).float(), torch.rand(1, 1, 84, 70)


def test_official_dav2_layout_loads_strictly_and_round_trips(tmp_path, dav2):
    official = checkpoints.to_official(dav2.state_dict(), amodal=False)
    assert all(k.startswith(("pretrained.", "depth_head.")) for k in official)
    assert official["pretrained.mask_token"].shape == (1, 32)
    assert checkpoints.detect_layout(official) == "dav2_official"
    assert checkpoints.to_ours(official).keys() == dav2.state_dict().keys()
    torch.save(official, tmp_path / "depth_anything_v2_tiny.pth")
    loaded = DepthAnythingV2.from_pretrained(tmp_path / "depth_anything_v2_tiny.pth", config=TINY)
    image = _inputs()[0]
    with torch.no_grad():
        assert torch.equal(loaded(image), dav2(image))
    again = checkpoints.to_official(loaded.state_dict(), amodal=False)
    assert again.keys() == official.keys() and all(torch.equal(again[k], official[k]) for k in official)


def test_released_amodal_layout_loads_from_file_and_folder(tmp_path, amodal):
    released = checkpoints.to_official(amodal.state_dict(), amodal=True)
    assert "encoder.pretrained.patch_embed_guidance.proj.weight" in released
    assert "encoder.depth_head.input_projection.0.1.weight" in released
    folder = tmp_path / "Amodal-Depth-Anything-DAV2"
    folder.mkdir()
    save_file(released, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"encoder": "vitl", "guide_type": "mask+observation"}))
    x = _inputs()
    for path in (folder, folder / "model.safetensors"):
        loaded = AmodalDAV2.from_pretrained(path, config=TINY)
        with torch.no_grad():
            assert torch.equal(loaded(*x), amodal(*x))


def test_swiglu_names_map_to_timm_and_compute_the_official_ffn():
    torch.manual_seed(0)
    model = DepthAnythingV2(TINY_G).eval()
    official = checkpoints.to_official(model.state_dict(), amodal=False)
    assert "pretrained.blocks.0.mlp.w12.weight" in official and "pretrained.blocks.0.mlp.w3.bias" in official
    assert not any(".mlp.fc" in k for k in official)
    assert checkpoints.infer_shape(checkpoints.to_ours(official))["swiglu"]
    # official SwiGLUFFNFused: w3(silu(x1) * x2), (x1, x2) = chunk(w12(x), 2)
    x = torch.randn(3, 32)
    x12 = F.linear(x, official["pretrained.blocks.1.mlp.w12.weight"], official["pretrained.blocks.1.mlp.w12.bias"])
    x1, x2 = x12.chunk(2, dim=-1)
    reference = F.linear(F.silu(x1) * x2, official["pretrained.blocks.1.mlp.w3.weight"], official["pretrained.blocks.1.mlp.w3.bias"])
    with torch.no_grad():
        assert torch.allclose(model.encoder.blocks[1].mlp(x), reference, atol=1e-6)


@pytest.mark.parametrize("size", ["s", "b", "l"])
def test_size_is_inferred_from_official_tensors(size):
    with torch.device("meta"):
        model = DepthAnythingV2(size)
    official = checkpoints.to_official(model.state_dict(), amodal=False)
    assert checkpoints.infer_shape(checkpoints.to_ours(official))["size"] == size
    assert f"ViT-{size.upper()}" in checkpoints.describe(official)


def test_wrong_size_names_the_size_and_the_keys(tmp_path):
    torch.manual_seed(0)
    with torch.device("meta"):
        small = DepthAnythingV2("s")
    official = {k: torch.zeros(v.shape) for k, v in checkpoints.to_official(small.state_dict(), amodal=False).items()}
    torch.save(official, tmp_path / "depth_anything_v2_vits.pth")
    with pytest.raises(ValueError) as error:
        DepthAnythingV2.from_pretrained(tmp_path / "depth_anything_v2_vits.pth", config="b")
    message = str(error.value)
    assert "ViT-S" in message and "ViT-B" in message and "wrong shape" in message and "encoder.blocks.0.attn.qkv.weight" in message
    assert DepthAnythingV2.from_pretrained(tmp_path / "depth_anything_v2_vits.pth").config.embed_dim == 384


def test_partial_file_names_missing_and_unexpected_keys(tmp_path, dav2):
    official = checkpoints.to_official(dav2.state_dict(), amodal=False)
    del official["depth_head.scratch.output_conv1.weight"]
    official["depth_head.extra.weight"] = torch.zeros(2)
    torch.save(official, tmp_path / "partial.pth")
    with pytest.raises(ValueError) as error:
        DepthAnythingV2.from_pretrained(tmp_path / "partial.pth", config=TINY)
    message = str(error.value)
    assert "partial.pth" in message
    assert "1 missing key(s): head.scratch.output_conv1.weight" in message
    assert "1 unexpected key(s): head.extra.weight" in message


def test_dav2_file_for_amodal_model_points_to_from_dav2(tmp_path, dav2, amodal):
    torch.save(checkpoints.to_official(dav2.state_dict(), amodal=False), tmp_path / "dav2.pth")
    with pytest.raises(ValueError, match="from_dav2") as error:
        AmodalDAV2.from_pretrained(tmp_path / "dav2.pth", config=TINY)
    assert "encoder.patch_embed_guidance.proj.weight" in str(error.value)
    save_file(checkpoints.to_official(amodal.state_dict(), amodal=True), str(tmp_path / "amodal.safetensors"))
    with pytest.raises(ValueError, match=r"AmodalDAV2\.from_pretrained"):
        DepthAnythingV2.from_pretrained(tmp_path / "amodal.safetensors", config=TINY)


def test_foreign_and_missing_files(tmp_path):
    torch.save({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(3)}, tmp_path / "depthfm.pth")
    with pytest.raises(ValueError, match="DepthFM"):
        DepthAnythingV2.from_pretrained(tmp_path / "depthfm.pth")
    torch.save({"note": "hello"}, tmp_path / "text.pth")
    with pytest.raises(ValueError, match="state dict of tensors"):
        DepthAnythingV2.from_pretrained(tmp_path / "text.pth")
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        DepthAnythingV2.from_pretrained(tmp_path / "nowhere.pth")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        DepthAnythingV2.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint path"):
        AmodalDAV2.from_pretrained(None)


def test_checkpoints_imports_alone_without_the_networks():
    """The file reader needs the configs, not the networks: importing it first, in a fresh
    interpreter, must work and must not pull in amodal_dav2 (no import circle)."""
    code = ("import sys, torch, amodal.models.checkpoints as c\n"
            "z = torch.zeros\n"
            "state = {'encoder.cls_token': z(1, 1, 8), 'encoder.pos_embed': z(1, 26, 8), 'head.scratch.layer1_rn.weight': z(4, 2, 3, 3),"
            " **{f'head.projects.{i}.weight': z(2, 8, 1, 1) for i in range(4)}}\n"
            "assert c.infer_shape(state)['size'] is None\n"
            "assert 'amodal.models.amodal_dav2' not in sys.modules, 'checkpoints imports the networks'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_no_function_level_imports_in_checkpoints():
    """An import inside a function is how the circle was hidden; none may come back."""
    tree = ast.parse(Path(checkpoints.__file__).read_text())
    inner = [
        f"{function.name}: line {node.lineno}"
        for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert not inner, inner


def test_configs_are_importable_from_where_they_were():
    from amodal.models import amodal_dav2, configs

    assert amodal_dav2.TINY is configs.TINY and amodal_dav2.CONFIGS is configs.CONFIGS
    assert amodal_dav2.DAV2Config is configs.DAV2Config
