"""Amodal-DAV2 as ONNX: onnxruntime against the torch model at sizes other than the export's,
the fill_residual network with its visible mask, the file's metadata, and clear errors.

Each network is exported once per module (a torch.export trace takes ~20 s on 2 cores), so
the tests are marked slow.
"""
import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from amodal.evaluation.predictors import model_predictor  # noqa: E402
from amodal.inference import load_model, predict  # noqa: E402
from amodal.models.amodal_dav2 import AmodalDAV2  # noqa: E402
from amodal.models.configs import TINY, TINY_SYNTH  # noqa: E402
from amodal.models.onnx_model import METADATA_KEY, OnnxAmodalDAV2, export_onnx, placement  # noqa: E402

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4


def _network(config) -> AmodalDAV2:
    """Random weights with every parameter moved off its initialisation (the guidance embedding
    starts at zero and would hide the mask and depth inputs)."""
    torch.manual_seed(0)
    model = AmodalDAV2(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model


def _inputs(batch, height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator)
    observed_depth = torch.rand(batch, 1, height, width, generator=generator)
    amodal_mask = torch.zeros(batch, 1, height, width)
    amodal_mask[..., height // 5: 4 * height // 5, width // 4: 3 * width // 4] = 1
    visible_mask = amodal_mask.clone()
    visible_mask[..., : height // 2, :] = 0  # the upper half of the object hidden
    return image, amodal_mask, observed_depth, visible_mask


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A folder where TINY was exported over an older file of the same name."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.onnx").write_bytes(b"an older file")
    model = _network(TINY)
    export_onnx(model, folder / "tiny.onnx")
    return folder, model


@pytest.fixture(scope="module")
def tiny(tiny_folder):
    folder, model = tiny_folder
    return model, OnnxAmodalDAV2(folder / "tiny.onnx")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    model = _network(TINY_SYNTH)
    path = export_onnx(model, tmp_path_factory.mktemp("synth") / "synth.onnx")
    return model, OnnxAmodalDAV2(path)


# 70² is TINY's training grid (position embedding used as it is), 98² and 56×84 are resampled;
# the graph was traced at 42×28 with a batch of 2
@pytest.mark.parametrize("batch, height, width", [(1, 70, 70), (1, 98, 98), (2, 56, 84)])
def test_onnxruntime_equals_torch_at_other_sizes(tiny, batch, height, width):
    model, exported = tiny
    image, amodal_mask, observed_depth, _ = _inputs(batch, height, width)
    with torch.no_grad():
        expected = model(image, amodal_mask, observed_depth)
    got = exported(image, amodal_mask, observed_depth)
    assert got.shape == (batch, 1, height, width) and got.dtype == torch.float32
    assert (got - expected).abs().max().item() < TOLERANCE
    assert expected.std() > 1e-3  # the outputs vary, so agreement means something


def test_the_guidance_inputs_reach_the_graph(tiny):
    # a different mask and D_o change the output the same way in both
    model, exported = tiny
    image, amodal_mask, observed_depth, _ = _inputs(1, 98, 98)
    other_mask, other_depth = 1 - amodal_mask, observed_depth.flip(-1)
    with torch.no_grad():
        expected = model(image, other_mask, other_depth)
    got = exported(image, other_mask, other_depth)
    assert (got - expected).abs().max().item() < TOLERANCE
    assert (got - exported(image, amodal_mask, observed_depth)).abs().max().item() > 1e-3


@pytest.mark.parametrize("height, width", [(112, 112), (98, 126)])
def test_fill_residual_network_with_its_visible_mask(synth, height, width):
    model, exported = synth
    assert exported.needs_visible_mask and exported.input_names[-1] == "filled_depth"
    image, amodal_mask, observed_depth, visible_mask = _inputs(1, height, width, seed=3)
    with torch.no_grad():
        expected = model(image, amodal_mask, observed_depth, visible_mask)
    got = exported(image, amodal_mask, observed_depth, visible_mask)
    assert (got - expected).abs().max().item() < TOLERANCE
    with pytest.raises(ValueError, match="needs visible_mask"):
        exported(image, amodal_mask, observed_depth)


def test_the_file_carries_the_config(tiny):
    _, exported = tiny
    assert exported.config == TINY
    assert exported.input_names == ("image", "amodal_mask", "observed_depth")
    record = json.loads(exported.session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    assert record["model"] == "AmodalDAV2" and record["output"] == "depth"
    dims = {i.name: i.shape for i in exported.session.get_inputs()}
    assert all(isinstance(d, str) for d in (dims["image"][0], dims["image"][2], dims["image"][3]))  # free axes


def test_predict_takes_either_network(tiny):
    # one code path: the same preprocessing and seam blend around either network
    model, exported = tiny
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (45, 60, 3), dtype=np.uint8)
    mask = np.zeros((45, 60), bool)
    mask[10:35, 15:45] = True
    observed = rng.random((45, 60)).astype(np.float32)
    by_torch = predict(rgb, mask, model, observed_depth=observed)
    by_onnx = predict(rgb, mask, exported, observed_depth=observed)
    assert by_onnx.shape == (45, 60) and np.abs(by_onnx - by_torch).max() < TOLERANCE
    assert np.abs(by_torch[mask] - observed[mask]).max() > 1e-3  # the network's output was pasted


def test_model_predictor_takes_the_onnx_network(synth):
    model, exported = synth
    image, amodal_mask, observed_depth, visible_mask = _inputs(2, 112, 112, seed=5)
    items = [{"image": image[i], "amodal_mask": amodal_mask[i], "observed_depth": observed_depth[i],
              "visible_mask": visible_mask[i]} for i in range(2)]
    by_torch, by_onnx = model_predictor(model).batch(items), model_predictor(exported).batch(items)
    assert max(np.abs(a - b).max() for a, b in zip(by_torch, by_onnx)) < TOLERANCE


def test_placement_and_loading(tiny, tiny_folder):
    model, exported = tiny
    assert placement(model) == (torch.device("cpu"), torch.float32)
    assert placement(exported) == (torch.device("cpu"), torch.float32)
    assert load_model(exported) is exported  # a network already loaded is taken as it is
    loaded = load_model(tiny_folder[0] / "tiny.onnx")  # backend "auto": onnxruntime for .onnx
    assert isinstance(loaded, OnnxAmodalDAV2) and loaded.config == TINY
    with pytest.raises(ValueError, match="runs on the CPU here"):
        load_model(tiny_folder[0] / "tiny.onnx", device="cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        load_model(tiny_folder[0] / "tiny.onnx", backend="tensorrt")


def test_bad_calls_are_named(tiny):
    _, exported = tiny
    image, amodal_mask, observed_depth, _ = _inputs(1, 70, 70)
    with pytest.raises(ValueError, match="multiples of 14"):
        exported(image[..., :69], amodal_mask[..., :69], observed_depth[..., :69])
    with pytest.raises(ValueError, match="amodal_mask must be"):
        exported(image, amodal_mask[..., :56, :56], observed_depth)


def test_export_replaces_a_file_whole_and_leaves_nothing_else(tiny_folder):
    folder, model = tiny_folder
    assert [p.name for p in folder.iterdir()] == ["tiny.onnx"]  # no temporary folder, no marker
    assert OnnxAmodalDAV2(folder / "tiny.onnx").config == TINY
    assert model.training is False and next(model.parameters()).device.type == "cpu"


def test_export_refuses_other_names_and_models(tmp_path):
    with pytest.raises(ValueError, match="ends in .onnx"):
        export_onnx(AmodalDAV2(TINY), tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="writes an AmodalDAV2"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_files_that_are_not_ours_are_named(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    with pytest.raises(FileNotFoundError, match="export-onnx"):
        OnnxAmodalDAV2(tmp_path / "none.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="garbage.onnx: onnxruntime cannot load it"):
        OnnxAmodalDAV2(tmp_path / "garbage.onnx")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "other.onnx")
    with pytest.raises(ValueError, match="other.onnx: an ONNX file without amodal's metadata"):
        OnnxAmodalDAV2(tmp_path / "other.onnx")
