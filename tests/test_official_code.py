"""scripts/official_code.py: importing the official modules from clones, building the official DAV2 networks."""
import sys
from pathlib import Path

import pytest
import torch
from official_testdata import write_dav2_clones, write_depthfm_clone, write_file

from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2
from amodal.utils.paths import checkout_module

official_code = checkout_module("scripts/official_code.py")


@pytest.fixture
def clones(tmp_path):
    return (*write_dav2_clones(tmp_path), write_depthfm_clone(tmp_path))


def test_modules_of_the_same_name_load_side_by_side(clones):
    dav2, amodal, _ = clones
    first = official_code.import_package_module("dav2", dav2, "stand_in_dav2", "dpt")
    second = official_code.import_package_module("official", amodal, "stand_in_amodal", "dpt")
    assert Path(first.__file__).is_relative_to(dav2) and Path(second.__file__).is_relative_to(amodal)
    assert first.DepthAnythingV2 is not second.DepthAnythingV2


def test_each_dav2_clone_has_its_own_alias(clones):
    dav2, amodal, _ = clones
    plain, guided = official_code.import_dav2_dpt("dav2", dav2), official_code.import_dav2_dpt("official", amodal)
    assert plain.__name__ == "official_dav2.dpt" and guided.__name__ == "official_amodal_dav2.dpt"
    assert Path(plain.__file__).is_relative_to(dav2) and Path(guided.__file__).is_relative_to(amodal)


def test_bare_sibling_imports_leave_no_trace(clones):
    _, _, dfm = clones
    module = official_code.import_depthfm_unet(dfm)
    assert hasattr(module, "UNetModel")
    assert "util" not in sys.modules and str(dfm / "depthfm" / "unet") not in sys.path


def test_an_alias_used_before_is_imported_afresh(clones, tmp_path):
    dav2, _, _ = clones
    official_code.import_package_module("dav2", dav2, "stand_in_again", "dpt")
    other = tmp_path / "another clone"
    write_file(other / "depth_anything_v2" / "dpt.py", "WHICH = 'the other one'\n")
    assert official_code.import_package_module("dav2", other, "stand_in_again", "dpt").WHICH == "the other one"


def test_a_wrong_folder_names_the_file_and_the_repository(tmp_path):
    with pytest.raises(official_code.OfficialCodeError, match="no depth_anything_v2/dpt.py in it; pass a clone of "
                                                             "DepthAnything/Depth-Anything-V2"):
        official_code.import_dav2_dpt("dav2", tmp_path)
    with pytest.raises(official_code.OfficialCodeError, match="no such folder"):
        official_code.import_dav2_dpt("official", tmp_path / "nowhere")


def test_perturb_moves_every_parameter():
    layer = torch.nn.Linear(3, 2)
    torch.nn.init.zeros_(layer.weight), torch.nn.init.zeros_(layer.bias)
    official_code.perturb(layer, 0)
    assert (layer.weight != 0).all() and (layer.bias != 0).all()
    assert 0.005 < layer.weight.abs().mean() < 0.05  # std 0.02 noise


@pytest.mark.parametrize("encoder, features, out_channels", [
    ("vits", 64, [48, 96, 192, 384]), ("vitb", 128, [96, 192, 384, 768]), ("vitl", 256, [256, 512, 1024, 1024]),
])
def test_head_shapes_are_the_official_configs(encoder, features, out_channels):
    # the model_configs of the official run.py / AmodalDAv2, read from the repositories
    assert official_code.dav2_head_shape(encoder) == (features, out_channels)


def test_official_inputs_normalise_and_build_the_guidance():
    image = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 2, 2) + 0.229 * torch.tensor(
        [1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    mask, depth = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]]), torch.full((1, 1, 2, 2), 0.25)
    normalised, guidance = official_code.official_inputs(image, mask, depth)
    assert torch.allclose(normalised[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)  # (x − mean) / std by hand
    assert guidance.tolist() == [[[[-1.0, 1.0], [1.0, -1.0]], [[-0.5, -0.5], [-0.5, -0.5]]]]  # mask first
    assert len(official_code.official_inputs(image)) == 1


def test_stand_in_networks_carry_the_official_names(clones):
    dav2, amodal, _ = clones
    plain = official_code.official_dav2(official_code.import_dav2_dpt("dav2", dav2), "vits")
    guided = official_code.official_amodal_dav2(official_code.import_dav2_dpt("official", amodal), "vits")
    assert all(k.startswith(("pretrained.", "depth_head.")) for k in plain.state_dict())
    assert "pretrained.patch_embed_guidance.proj.weight" in guided.state_dict()
    assert isinstance(plain.net[0], DepthAnythingV2) and isinstance(guided.net[0], AmodalDAV2)


def test_max_gap_is_taken_in_float64():
    a = torch.tensor([1.0, 2.0 ** 24], dtype=torch.float32)
    b = torch.tensor([1.0, 2.0 ** 24 + 2], dtype=torch.float32)
    assert official_code.max_gap(a, b) == 2.0
