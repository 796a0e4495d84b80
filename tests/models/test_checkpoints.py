"""Checkpoint layouts: official DAV2 .pth, released Amodal-DAV2 safetensors, ours; strict errors.

The "official" files here are built from ``official_keys``, a key list written by hand from
the official module definitions, never with our own writer ``to_official``: a naming
mistake shared by reader and writer would otherwise pass unnoticed.
"""
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
from hub_testdata import add_to_cache
from official_keys import ABSENT, KEY_COUNTS, KNOWN, OFFICIAL_SIZES, official_shapes, official_size_shapes, random_state
from pickle_testdata import write_hostile_checkpoint

TINY_G = dataclasses.replace(TINY, swiglu=True)


def tiny_official(amodal=False, config=TINY, seed=0):
    """An official-layout state dict of the tiny size, random tensors, from the hand-written key list."""
    shapes = official_shapes(config.embed_dim, config.depth, config.features, config.out_channels,
                             config.swiglu, grid=config.img_size // 14, amodal=amodal)
    return random_state(shapes, seed)


def _inputs():
    torch.manual_seed(2)
    return torch.rand(1, 3, 84, 70), (torch.rand(1, 1, 84, 70) > 0.5).float(), torch.rand(1, 1, 84, 70)


def test_key_list_agrees_with_the_facts_spelled_out():
    for size, known in KNOWN.items():
        shapes = official_size_shapes(size)
        for key, shape in known.items():
            assert shapes[key] == shape, key
    for (size, amodal), count in KEY_COUNTS.items():
        assert len(official_size_shapes(size, amodal)) == count
    assert not set(ABSENT) & set(official_size_shapes("l"))


@pytest.mark.parametrize("config", [TINY, TINY_G], ids=["gelu", "swiglu"])
def test_official_dav2_file_loads_strictly_and_every_tensor_lands(tmp_path, config):
    official = tiny_official(config=config)
    torch.save(official, tmp_path / "depth_anything_v2_tiny.pth")
    loaded = DepthAnythingV2.from_pretrained(tmp_path / "depth_anything_v2_tiny.pth", config=config)
    ours = dict(loaded.state_dict())
    for key, value in official.items():  # our names: prefixes shortened, SwiGLU w12/w3 → fc1/fc2
        if key == "pretrained.mask_token":
            continue  # used only by DINOv2's masked pre-training; dropped
        name = key.replace("pretrained.", "encoder.", 1).replace("depth_head.", "head.", 1)
        name = name.replace(".mlp.w12.", ".mlp.fc1.").replace(".mlp.w3.", ".mlp.fc2.")
        assert torch.equal(ours.pop(name), value), key
    assert not ours  # nothing in the model that the file did not fill
    # spot checks by attribute, independent of any renaming
    assert torch.equal(loaded.encoder.blocks[2].attn.qkv.weight, official["pretrained.blocks.2.attn.qkv.weight"])
    assert torch.equal(loaded.head.scratch.refinenet3.resConfUnit1.conv2.bias,
                       official["depth_head.scratch.refinenet3.resConfUnit1.conv2.bias"])


def test_released_amodal_file_loads_from_file_and_folder(tmp_path):
    released = tiny_official(amodal=True, seed=1)
    folder = tmp_path / "Amodal-Depth-Anything-DAV2"
    folder.mkdir()
    save_file(released, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"encoder": "vitl", "guide_type": "mask+observation"}))
    x = _inputs()
    outputs = []
    for path in (folder, folder / "model.safetensors"):
        loaded = AmodalDAV2.from_pretrained(path, config=TINY)
        assert torch.equal(loaded.encoder.patch_embed_guidance.proj.weight,
                           released["encoder.pretrained.patch_embed_guidance.proj.weight"])
        assert torch.equal(loaded.head.input_projection[2][1].bias, released["encoder.depth_head.input_projection.2.1.bias"])
        assert torch.equal(loaded.head.scratch.output_conv2[2].weight, released["encoder.depth_head.scratch.output_conv2.2.weight"])
        with torch.no_grad():
            outputs.append(loaded(*x))
    assert torch.equal(*outputs)


@pytest.mark.parametrize("amodal", [False, True])
def test_our_writer_produces_the_official_names_and_shapes(amodal):
    for config in (TINY, TINY_G):
        model = (AmodalDAV2 if amodal else DepthAnythingV2)(config)
        written = checkpoints.to_official(model.state_dict(), amodal=amodal)
        expected = official_shapes(config.embed_dim, config.depth, config.features, config.out_channels,
                                   config.swiglu, grid=5, amodal=amodal)
        assert {k: tuple(v.shape) for k, v in written.items()} == expected


def test_swiglu_computes_the_official_ffn():
    official = tiny_official(config=TINY_G)
    model = DepthAnythingV2(TINY_G).eval()
    checkpoints.load_strict(model, checkpoints.to_ours(official), "tiny ViT-G")
    # official SwiGLUFFNFused: w3(silu(x1) * x2), (x1, x2) = chunk(w12(x), 2)
    x = torch.randn(3, 32)
    x12 = F.linear(x, official["pretrained.blocks.1.mlp.w12.weight"], official["pretrained.blocks.1.mlp.w12.bias"])
    x1, x2 = x12.chunk(2, dim=-1)
    reference = F.linear(F.silu(x1) * x2, official["pretrained.blocks.1.mlp.w3.weight"], official["pretrained.blocks.1.mlp.w3.bias"])
    with torch.no_grad():
        assert torch.allclose(model.encoder.blocks[1].mlp(x), reference, atol=1e-6)


@pytest.mark.parametrize("size", sorted(OFFICIAL_SIZES))
def test_full_size_official_files_fit_and_are_sized(size):
    official = random_state(official_size_shapes(size), device="meta")  # shapes only
    ours = checkpoints.to_ours(official)
    assert checkpoints.infer_shape(ours)["size"] == size
    assert f"ViT-{size.upper()}" in checkpoints.describe(official)
    with torch.device("meta"):
        model = DepthAnythingV2(size)
    checkpoints.load_strict(model, ours, f"depth_anything_v2_vit{size}.pth")
    if size != "g":  # the released Amodal-DAV2 sizes
        released = checkpoints.to_ours(random_state(official_size_shapes(size, amodal=True), device="meta"))
        with torch.device("meta"):
            amodal = AmodalDAV2(size)
        checkpoints.load_strict(amodal, released, "model.safetensors")


@pytest.mark.slow
def test_wrong_size_names_the_size_and_the_keys(tmp_path):
    official = {k: torch.zeros(shape) for k, shape in official_size_shapes("s").items()}
    torch.save(official, tmp_path / "depth_anything_v2_vits.pth")
    with pytest.raises(ValueError) as error:
        DepthAnythingV2.from_pretrained(tmp_path / "depth_anything_v2_vits.pth", config="b")
    message = str(error.value)
    assert "ViT-S" in message and "ViT-B" in message and "wrong shape" in message and "encoder.blocks.0.attn.qkv.weight" in message
    assert DepthAnythingV2.from_pretrained(tmp_path / "depth_anything_v2_vits.pth").config.embed_dim == 384


def test_partial_file_names_missing_and_unexpected_keys(tmp_path):
    official = tiny_official()
    del official["depth_head.scratch.output_conv1.weight"]
    official["depth_head.extra.weight"] = torch.zeros(2)
    torch.save(official, tmp_path / "partial.pth")
    with pytest.raises(ValueError) as error:
        DepthAnythingV2.from_pretrained(tmp_path / "partial.pth", config=TINY)
    message = str(error.value)
    assert "partial.pth" in message
    assert "1 missing key(s): head.scratch.output_conv1.weight" in message
    assert "1 unexpected key(s): head.extra.weight" in message


def test_dav2_file_for_amodal_model_points_to_from_dav2(tmp_path):
    torch.save(tiny_official(), tmp_path / "dav2.pth")
    with pytest.raises(ValueError, match="from_dav2") as error:
        AmodalDAV2.from_pretrained(tmp_path / "dav2.pth", config=TINY)
    assert "encoder.patch_embed_guidance.proj.weight" in str(error.value)
    save_file(tiny_official(amodal=True), str(tmp_path / "amodal.safetensors"))
    with pytest.raises(ValueError, match=r"AmodalDAV2\.from_pretrained"):
        DepthAnythingV2.from_pretrained(tmp_path / "amodal.safetensors", config=TINY)


def test_training_checkpoint_is_unwrapped_by_key(tmp_path):
    official = tiny_official()
    optimizer = {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-4, "params": [0]}]}
    wrapped = {"model": official, "optimizer": optimizer, "epoch": 7, "scheduler": {"last_epoch": 7}}
    torch.save(wrapped, tmp_path / "train.pth")  # four entries: the old len(state) <= 3 rule refused it
    loaded = DepthAnythingV2.from_pretrained(tmp_path / "train.pth", config=TINY)
    assert torch.equal(loaded.encoder.pos_embed, official["pretrained.pos_embed"])
    # the first wrapper holding weights of a known layout wins, wherever it stands
    torch.save({"epoch": 1, "ema": tiny_official(seed=5), "state_dict": official}, tmp_path / "ema.pth")
    loaded = DepthAnythingV2.from_pretrained(tmp_path / "ema.pth", config=TINY)
    assert torch.equal(loaded.encoder.pos_embed, official["pretrained.pos_embed"])
    # a DDP-style wrapper
    torch.save({"module": official, "step": 10}, tmp_path / "ddp.pth")
    assert checkpoints.read_checkpoint(tmp_path / "ddp.pth")[0] is not None


def test_file_without_weights_lists_what_it_holds(tmp_path):
    torch.save({"optimizer": {"state": {}}, "epoch": 7, "config": {"lr": 0.1}}, tmp_path / "no_weights.pth")
    with pytest.raises(ValueError) as error:
        DepthAnythingV2.from_pretrained(tmp_path / "no_weights.pth")
    message = str(error.value)
    assert "no_weights.pth" in message and "'optimizer' (dict)" in message and "'epoch' (int)" in message
    assert "state_dict" in message and "model" in message  # where it looked


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


@pytest.mark.slow
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


def test_a_hostile_pth_is_refused_and_runs_nothing(tmp_path):
    write_hostile_checkpoint(tmp_path / "depth_anything_v2_vits.pth", tmp_path / "ran")
    with pytest.raises(ValueError, match=r"vits.pth was not loaded: .*posix.mkdir"):
        checkpoints.read_checkpoint(tmp_path / "depth_anything_v2_vits.pth")
    assert not (tmp_path / "ran").exists()


def test_official_files_load_by_hub_id_from_the_cache(hub_cache, tmp_path):
    """The official DAV2 .pth and the released Amodal-DAV2 folder, named by their hub ids (also
    ``@revision`` and ``:file``), read offline from a cache in the hub's layout."""
    dav2, newer = tiny_official(seed=3), tiny_official(seed=5)
    torch.save(dav2, tmp_path / "main.pth")
    torch.save(newer, tmp_path / "v2.pth")
    add_to_cache(hub_cache, "depth-anything/Depth-Anything-V2-Small", {"depth_anything_v2_vits.pth": tmp_path / "main.pth"})
    add_to_cache(hub_cache, "depth-anything/Depth-Anything-V2-Small", {"depth_anything_v2_vits.pth": tmp_path / "v2.pth"},
                 revision="v2")
    loaded = DepthAnythingV2.from_pretrained("depth-anything/Depth-Anything-V2-Small", config=TINY)
    assert torch.equal(loaded.encoder.blocks[1].attn.qkv.weight, dav2["pretrained.blocks.1.attn.qkv.weight"])
    tagged = DepthAnythingV2.from_pretrained("depth-anything/Depth-Anything-V2-Small@v2", config=TINY)
    assert torch.equal(tagged.encoder.blocks[1].attn.qkv.weight, newer["pretrained.blocks.1.attn.qkv.weight"])
    started = AmodalDAV2.from_dav2("depth-anything/Depth-Anything-V2-Small", config=TINY)
    assert torch.equal(started.head.scratch.layer2_rn.weight, dav2["depth_head.scratch.layer2_rn.weight"])
    assert not started.encoder.patch_embed_guidance.proj.weight.any()

    released = tiny_official(amodal=True, seed=4)
    save_file(released, str(tmp_path / "model.safetensors"))
    add_to_cache(hub_cache, "zhyever/Amodal-Depth-Anything-DAV2", {
        "model.safetensors": tmp_path / "model.safetensors",
        "config.json": json.dumps({"encoder": "vitl", "guide_type": "mask+observation"}).encode()})
    for spec in ("zhyever/Amodal-Depth-Anything-DAV2", "zhyever/Amodal-Depth-Anything-DAV2:model.safetensors"):
        amodal = AmodalDAV2.from_pretrained(spec, config=TINY)
        assert torch.equal(amodal.encoder.patch_embed_guidance.proj.weight,
                           released["encoder.pretrained.patch_embed_guidance.proj.weight"])
    with pytest.raises(ValueError, match=r"AmodalDAV2\.from_pretrained"):
        DepthAnythingV2.from_pretrained("zhyever/Amodal-Depth-Anything-DAV2", config=TINY)


def test_a_hub_id_not_in_the_cache_while_offline_says_how_to_get_it(hub_cache):
    with pytest.raises(FileNotFoundError) as caught:
        AmodalDAV2.from_pretrained("zhyever/Amodal-Depth-Anything-DAV2")
    message = str(caught.value)
    assert message.startswith("Amodal-DAV2 checkpoint zhyever/Amodal-Depth-Anything-DAV2: ")
    assert "`hf download zhyever/Amodal-Depth-Anything-DAV2 model.safetensors`" in message
    with pytest.raises(FileNotFoundError, match="hf download depth-anything/Depth-Anything-V2-Large "
                                                "depth_anything_v2_vitl.pth --revision v1"):
        AmodalDAV2.from_dav2("depth-anything/Depth-Anything-V2-Large@v1")


def test_checkpoint_format_names_each_layout(tmp_path):
    """The format of a file or folder, by path (the transformers format: tests/models/test_transformers_format.py)."""
    torch.save(tiny_official(), tmp_path / "dav2.pth")
    released = tmp_path / "released"
    released.mkdir()
    save_file(tiny_official(amodal=True), str(released / "model.safetensors"))
    (released / "config.json").write_text(json.dumps({"encoder": "vitl", "guide_type": "mask+observation"}))
    ours = AmodalDAV2(TINY).save_pretrained(tmp_path / "ours")
    found = {name: checkpoints.checkpoint_format(path)
             for name, path in (("dav2", tmp_path / "dav2.pth"), ("released", released), ("ours", ours))}
    assert {name: f.name for name, f in found.items()} == {
        "dav2": "dav2_official", "released": "amodal_official", "ours": "ours"}
    assert found["dav2"].description.startswith("an official (pretrained.*, depth_head.*) checkpoint of Depth Anything V2")
    assert found["released"].description.startswith("a released-Amodal-DAV2-layout (encoder.pretrained.*) checkpoint "
                                                    "of Amodal-DAV2")
    assert found["ours"].description.startswith("an amodal-layout checkpoint of Amodal-DAV2")
