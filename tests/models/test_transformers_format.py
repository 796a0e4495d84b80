"""The transformers format of Depth Anything V2, against transformers itself.

The expected values come from ``transformers`` (the test extra pins it): its
``DepthAnythingForDepthEstimation`` is built with random weights, written by its own
``save_pretrained`` and run beside ours on the same image; we read the folder with our own code.
Every parameter is perturbed (and the last bias lifted, so that the final ReLU zeroes almost
nothing), so that no zero-initialised layer or dead output can hide a wrong mapping.

The configs written by hand are the hub's: ``depth-anything/Depth-Anything-V2-Small-hf``'s
``config.json`` leaves most fields out (the hub's file view of it), and the other sizes' fields
are those of transformers' conversion script for Depth Anything V2 (hidden size, heads, layers,
``out_indices`` [3, 6, 9, 12] for S and B, [5, 12, 18, 24] for L, fusion and neck sizes).
"""
import collections
import dataclasses
import json
import math
import types

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation
from transformers.core_model_loading import revert_weight_conversion

from amodal.models import checkpoints, transformers_format
from amodal.models.amodal_dav2 import TINY, AmodalDAV2, DepthAnythingV2
from amodal.models.configs import CONFIGS
from hub_testdata import add_to_cache, folder_files

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet, as transformers' image processor
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

# depth-anything/Depth-Anything-V2-Small-hf's config.json as the hub shows it (fields not given
# take transformers' defaults)
HUB_SMALL = {
    "architectures": ["DepthAnythingForDepthEstimation"], "backbone": None,
    "backbone_config": {"architectures": ["Dinov2Model"], "hidden_size": 384, "image_size": 518,
                        "model_type": "dinov2", "num_attention_heads": 6,
                        "out_features": ["stage3", "stage6", "stage9", "stage12"], "out_indices": [3, 6, 9, 12],
                        "reshape_hidden_states": False, "torch_dtype": "float32"},
    "fusion_hidden_size": 64, "head_hidden_size": 32, "head_in_index": -1, "initializer_range": 0.02,
    "model_type": "depth_anything", "neck_hidden_sizes": [48, 96, 192, 384], "patch_size": 14,
    "reassemble_factors": [4, 2, 1, 0.5], "reassemble_hidden_size": 384, "torch_dtype": "float32",
    "use_pretrained_backbone": False,
}


def hub_config(hidden, heads, layers, stages, fusion, neck):
    config = json.loads(json.dumps(HUB_SMALL))
    config["backbone_config"].update(hidden_size=hidden, num_attention_heads=heads, num_hidden_layers=layers,
                                     out_indices=stages, out_features=[f"stage{i}" for i in stages])
    config.update(reassemble_hidden_size=hidden, fusion_hidden_size=fusion, neck_hidden_sizes=neck)
    return config


HUB_CONFIGS = {
    "s": HUB_SMALL,
    "b": hub_config(768, 12, 12, [3, 6, 9, 12], 128, [96, 192, 384, 768]),
    "l": hub_config(1024, 16, 24, [5, 12, 18, 24], 256, [256, 512, 1024, 1024]),
}
# a tiny one with every code path of the full ones: four taps, position-embedding resampling
TINY_HF = hub_config(32, 2, 4, [1, 2, 3, 4], 16, [8, 16, 32, 32])
TINY_HF["backbone_config"]["image_size"] = 70


def build(config: dict, seed: int = 0):
    """transformers' model of ``config``, every parameter perturbed, in eval mode."""
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(DepthAnythingConfig.from_dict(config)).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            scale = 1 / math.sqrt(parameter[0].numel()) if parameter.ndim >= 2 else 0.1
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
        model.head.conv3.bias.add_(1.0)  # most outputs above the final ReLU
    return model


def official_position_resampling(embeddings, grid: int):
    """Make transformers resample its position embedding as the official DAV2 code does:
    ``scale_factor=((h + 0.1) / n, (w + 0.1) / n)``, bicubic, no antialias, class token kept,
    skipped for the trained square grid (shared/MISSION.md, parity facts)."""

    def interpolate_pos_encoding(self, tokens, height, width):
        table = self.position_embeddings
        h, w = height // 14, width // 14
        if h == w == grid:
            return table
        patches = table[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2).float()
        patches = F.interpolate(patches, scale_factor=((h + 0.1) / grid, (w + 0.1) / grid), mode="bicubic",
                                antialias=False)
        return torch.cat([table[:, :1], patches.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)

    embeddings.interpolate_pos_encoding = types.MethodType(interpolate_pos_encoding, embeddings)


def both(ours, theirs, image):
    """(our depth (B, H, W), transformers' predicted_depth (B, H, W)) for an image in [0, 1]."""
    with torch.no_grad():
        return ours(image)[:, 0], theirs(pixel_values=(image - MEAN) / STD).predicted_depth


def check_meaningful(depth):
    assert (depth > 0).float().mean() > 0.5 and depth.std() > 0.1  # a comparison of something


@pytest.mark.slow
def test_small_matches_transformers_by_folder_and_by_hub_id(tmp_path, hub_cache):
    theirs = build(HUB_SMALL)
    theirs.save_pretrained(tmp_path / "saved")  # transformers' own writer: its full config.json
    add_to_cache(hub_cache, "depth-anything/Depth-Anything-V2-Small-hf", {
        "model.safetensors": tmp_path / "saved" / "model.safetensors",
        "config.json": json.dumps(HUB_SMALL).encode()})  # the hub's short config.json
    by_folder = DepthAnythingV2.from_pretrained(tmp_path / "saved")
    ours = DepthAnythingV2.from_pretrained("depth-anything/Depth-Anything-V2-Small-hf")
    assert ours.config == by_folder.config == CONFIGS["s"]
    for (key, a), b in zip(ours.state_dict().items(), by_folder.state_dict().values()):
        assert torch.equal(a, b), key
    torch.manual_seed(3)
    image = torch.rand(1, 3, 518, 518)
    depth, reference = both(ours, theirs, image)
    check_meaningful(reference)
    assert (depth - reference).abs().max() < 1e-4
    # other sizes: transformers resamples the position embedding its own way (size=, no 0.1 offset) ...
    image = torch.rand(1, 3, 266, 378)
    depth, stock = both(ours, theirs, image)
    assert (depth - stock).abs().max() > 1e-3
    # ... and with the official resampling its network is ours to 1e-4, non-square too
    official_position_resampling(theirs.backbone.embeddings, grid=37)
    depth, reference = both(ours, theirs, image)
    check_meaningful(reference)
    assert (depth - reference).abs().max() < 1e-4


def test_small_width_at_reduced_depth_matches_transformers(tmp_path):
    """The Small network (width 384, 6 heads, Small's neck and fusion) with 4 blocks instead of 12, at
    518² where both resample nothing: transformers' stock model, no patch, within 1e-4."""
    theirs = build(hub_config(384, 6, 4, [1, 2, 3, 4], 64, [48, 96, 192, 384]), seed=5)
    theirs.save_pretrained(tmp_path)
    ours = DepthAnythingV2.from_pretrained(tmp_path)
    assert ours.config == dataclasses.replace(CONFIGS["s"], depth=4, taps=(0, 1, 2, 3))
    torch.manual_seed(6)
    depth, reference = both(ours, theirs, torch.rand(1, 3, 518, 518))
    check_meaningful(reference)
    assert (depth - reference).abs().max() < 1e-4


@pytest.mark.parametrize("variant", ["gelu", "swiglu", "max_depth"])
def test_tiny_matches_transformers(tmp_path, variant):
    """Every mapping rule on a tiny model: GELU and SwiGLU MLPs, and a relative head scaled by max_depth."""
    config = json.loads(json.dumps(TINY_HF))
    config["backbone_config"]["use_swiglu_ffn"] = variant == "swiglu"
    if variant == "max_depth":
        config["max_depth"] = 3  # predicted_depth = ReLU(·) · 3 (transformers 5 takes whole numbers only)
    theirs = build(config, seed=7)
    theirs.save_pretrained(tmp_path)
    ours = DepthAnythingV2.from_pretrained(tmp_path)
    assert ours.config == dataclasses.replace(TINY, swiglu=variant == "swiglu")
    official_position_resampling(theirs.backbone.embeddings, grid=5)
    for size in ((70, 70), (98, 56)):
        depth, reference = both(ours, theirs, torch.rand(2, 3, *size))
        check_meaningful(reference)
        assert (depth - reference).abs().max() < 1e-4, size


@pytest.mark.parametrize("swiglu", [False, True], ids=["gelu", "swiglu"])
def test_module_names_of_transformers_5_are_read_too(tmp_path, swiglu):
    """transformers 5 names its modules q_proj ... o_proj (SwiGLU: gate_proj, up_proj, down_proj) in
    memory and writes the older names; a state dict saved as it is in memory loads too."""
    config = json.loads(json.dumps(TINY_HF))
    config["backbone_config"]["use_swiglu_ffn"] = swiglu
    theirs = build(config, seed=2)
    state = {k: v.contiguous() for k, v in theirs.state_dict().items()}
    assert any(".attention.q_proj." in k for k in state)
    assert any(".mlp.gate_proj." in k for k in state) == swiglu
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(config))
    ours = DepthAnythingV2.from_pretrained(tmp_path)
    depth, reference = both(ours, theirs, torch.rand(1, 3, 70, 70))
    assert (depth - reference).abs().max() < 1e-4


def test_amodal_dav2_starts_from_a_transformers_checkpoint(tmp_path, hub_cache):
    theirs = build(TINY_HF, seed=4)
    theirs.save_pretrained(tmp_path)
    add_to_cache(hub_cache, "depth-anything/Depth-Anything-V2-Base-hf", folder_files(tmp_path))
    started = AmodalDAV2.from_dav2("depth-anything/Depth-Anything-V2-Base-hf")  # read offline, as a folder
    attention = theirs.backbone.encoder.layer[1].attention  # q, k, v stacked: our fused qkv
    qkv = torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight])
    assert torch.equal(started.encoder.blocks[1].attn.qkv.weight, qkv)
    assert torch.equal(started.head.scratch.refinenet4.out_conv.weight, theirs.neck.fusion_stage.layers[0].projection.weight)
    assert torch.equal(started.head.scratch.output_conv2[2].weight, theirs.head.conv3.weight)
    assert not started.encoder.patch_embed_guidance.proj.weight.any()
    with pytest.raises(ValueError, match=r"from_dav2"):
        AmodalDAV2.from_pretrained(tmp_path)


def test_a_metric_checkpoint_written_by_transformers_is_refused(tmp_path):
    config = dict(TINY_HF, depth_estimation_type="metric", max_depth=20)
    build(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError) as caught:
        DepthAnythingV2.from_pretrained(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path} is a transformers DepthAnythingForDepthEstimation checkpoint of a metric model")
    assert "max_depth 20" in message and "relative" in message


@pytest.mark.parametrize("size", sorted(HUB_CONFIGS))
def test_the_hub_configs_are_our_standard_sizes(size):
    assert transformers_format.to_dav2_config(HUB_CONFIGS[size], "config.json") == CONFIGS[size]
    assert transformers_format.describe_config(HUB_CONFIGS[size]).endswith(f"relative depth, ViT-{size.upper()}")


def their_keys(config: dict) -> tuple[list[str], list[str], dict[str, tuple]]:
    """transformers' keys for ``config`` as its model names them in memory and as it writes them
    (its own reverse conversion, which gives the names of its save_pretrained files), and the
    in-memory shapes; built on the meta device, so no weights are made."""
    with torch.device("meta"):
        model = DepthAnythingForDepthEstimation(DepthAnythingConfig.from_dict(config))
    state = model.state_dict()
    written = revert_weight_conversion(model, dict(state))
    return list(state), list(written), {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("size", ["s", "b", "l", "tiny-swiglu"])
def test_every_key_of_both_sides_is_used_exactly_once(size):
    config = json.loads(json.dumps(HUB_CONFIGS.get(size, TINY_HF)))
    config["backbone_config"]["use_swiglu_ffn"] = size == "tiny-swiglu"
    with torch.device("meta"):
        ours = DepthAnythingV2(transformers_format.to_dav2_config(config, "config.json")).state_dict()
    in_memory, written, shapes = their_keys(config)
    assert set(in_memory) != set(written)  # the two namings differ (q_proj / attention.attention.query, ...)
    for keys in (in_memory, written):
        mapping = transformers_format.key_map(keys)
        # theirs: every key used but the one we drop on purpose
        assert set(keys) - set(mapping) == {"backbone.embeddings.mask_token"}
        # ours: every key made, each from one of theirs, or from its parts each given once
        assert set(name for name, _ in mapping.values()) == set(ours)
        assert len(set(mapping.values())) == len(mapping)  # no (name, part) twice
        parts = collections.Counter(name for name, _ in mapping.values())
        fused = {name: count for name, count in parts.items() if count > 1}
        blocks = ours_depth(ours)
        expected = {f"encoder.blocks.{i}.attn.qkv.{kind}": 3 for i in range(blocks) for kind in ("weight", "bias")}
        if size == "tiny-swiglu" and keys is in_memory:  # written: one fused weights_in; in memory: gate, up
            expected.update({f"encoder.blocks.{i}.mlp.fc1.{kind}": 2 for i in range(blocks) for kind in ("weight", "bias")})
        assert fused == expected
    # and the shapes fit: every tensor renamed (and the parts joined) has our shape
    renamed = transformers_format.to_ours({k: torch.empty(shape, device="meta") for k, shape in shapes.items()})
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {k: tuple(v.shape) for k, v in ours.items()}


def ours_depth(state: dict) -> int:
    return 1 + max(int(key.split(".")[2]) for key in state if key.startswith("encoder.blocks."))


def transformers_folder(tmp_path, config):
    """A folder with ``config`` and a model.safetensors whose keys are transformers' (values unread)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    save_file({"backbone.embeddings.cls_token": torch.zeros(1, 1, 32), "neck.convs.0.weight": torch.zeros(16, 8, 3, 3)},
              str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


@pytest.mark.parametrize("change, says", [
    ({"depth_estimation_type": "metric", "max_depth": 80},
     "is a transformers DepthAnythingForDepthEstimation checkpoint of a metric model (depth_estimation_type 'metric', "
     "max_depth 80): it predicts metric depth"),
    ({"model_type": "dpt", "architectures": ["DPTForDepthEstimation"]},
     "is a transformers checkpoint of another model (model_type 'dpt', DPTForDepthEstimation), not Depth Anything"),
    ({"backbone_config": dict(TINY_HF["backbone_config"], model_type="dinov2_with_registers")},
     "its backbone is 'dinov2_with_registers', not the DINOv2 of Depth Anything"),
    ({"backbone_config": dict(TINY_HF["backbone_config"], out_indices=[0, 1, 2, 3])},
     "backbone stages [0, 1, 2, 3] must be four of 1 … 4"),
    ({"backbone_config": dict(TINY_HF["backbone_config"], out_indices=[1, 2, 2, 4])},
     "backbone stages [1, 2, 2, 4] must be four of 1 … 4"),
    ({"backbone_config": dict(TINY_HF["backbone_config"], hidden_size="wide")},
     "backbone_config needs whole numbers ≥ 1 where it has hidden_size 'wide'"),
    ({"reassemble_factors": [4, 2, 1, 1], "head_in_index": 0},
     "reassemble_factors [4, 2, 1, 1] (this network has [4, 2, 1, 0.5]); head_in_index 0"),
])
def test_a_transformers_checkpoint_this_network_cannot_be_is_refused(tmp_path, change, says):
    folder = transformers_folder(tmp_path / "model", dict(TINY_HF, **change))
    with pytest.raises(ValueError) as caught:
        DepthAnythingV2.from_pretrained(folder)
    assert str(caught.value).startswith(str(folder)) and says in str(caught.value)
    assert checkpoints.checkpoint_format(folder).name == "transformers"


def test_transformers_tensors_without_their_config_are_refused(tmp_path):
    folder = transformers_folder(tmp_path / "model", TINY_HF)
    (folder / "config.json").unlink()
    assert checkpoints.checkpoint_format(folder).name == "transformers"
    with pytest.raises(ValueError, match="without its config.json"):
        DepthAnythingV2.from_pretrained(folder)


def test_a_file_of_no_known_format_is_refused_with_its_keys(tmp_path):
    save_file({"vision_model.embeddings.weight": torch.zeros(2), "text_model.head.bias": torch.zeros(1)},
              str(tmp_path / "model.safetensors"))
    found = checkpoints.checkpoint_format(tmp_path)
    assert found == checkpoints.CheckpointFormat("unknown", "a file of no known format (2 keys, e.g. "
                                                           "text_model.head.bias, vision_model.embeddings.weight)")
    with pytest.raises(ValueError) as caught:
        DepthAnythingV2.from_pretrained(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path} is a file of no known format (2 keys, e.g. text_model.head.bias, vision_model")
    for format in ("official Depth Anything V2 .pth", "released Amodal-DAV2", "a folder of ours",
                   "transformers DepthAnythingForDepthEstimation folder"):
        assert format in message


def test_checkpoint_format_names_a_transformers_folder(tmp_path):
    build(TINY_HF).save_pretrained(tmp_path)
    found = checkpoints.checkpoint_format(tmp_path)
    assert found.name == "transformers"
    assert found.description == ("a transformers DepthAnythingForDepthEstimation checkpoint of relative depth, "
                                 "dim 32, 4 blocks, taps [0, 1, 2, 3]")
    assert checkpoints.checkpoint_format(tmp_path / "model.safetensors") == found  # config.json beside it


def test_a_stray_transformers_config_beside_official_tensors_does_not_decide(tmp_path):
    """The keys win over a config.json that says otherwise: official DAV2 tensors load as such."""
    official = DepthAnythingV2(TINY)
    state = {"pretrained." + k.removeprefix("encoder."): v for k, v in official.state_dict().items()
             if k.startswith("encoder.")}
    state.update({"depth_head." + k.removeprefix("head."): v for k, v in official.state_dict().items()
                  if k.startswith("head.")})
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(TINY_HF))
    assert checkpoints.checkpoint_format(tmp_path).name == "dav2_official"
    loaded = DepthAnythingV2.from_pretrained(tmp_path, config=TINY)
    for key, value in official.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
