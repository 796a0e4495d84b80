"""DPT head: channel LayerNorm, shapes, activations, official module names."""
import pytest
import torch
import torch.nn.functional as F

from amodal.models.dpt import ChannelLayerNorm, DPTHead, FeatureFusionBlock

OUT = (8, 16, 32, 32)


def _tokens(b, h, w, c=24, n=4):
    return [torch.randn(b, h * w, c) for _ in range(n)]


def test_channel_layer_norm_equals_layer_norm_over_channels():
    torch.manual_seed(0)
    norm = ChannelLayerNorm(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    reference = F.layer_norm(x.permute(0, 2, 3, 1), (6,), norm.weight, norm.bias, 1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(norm(x), reference, atol=1e-5)


@pytest.mark.parametrize("grid", [(5, 5), (4, 7)])
def test_head_output_size_and_range(grid):
    torch.manual_seed(0)
    features = _tokens(2, *grid)
    relu = DPTHead(24, 16, OUT, output="relu")(features, *grid)
    sigmoid = DPTHead(24, 16, OUT, input_projection=True, output="sigmoid")(features, *grid)
    assert relu.shape == sigmoid.shape == (2, 1, grid[0] * 14, grid[1] * 14)
    assert relu.min() >= 0
    assert 0 < sigmoid.min() and sigmoid.max() < 1


def test_input_projection_is_the_only_difference():
    torch.manual_seed(0)
    plain = DPTHead(24, 16, OUT, output="sigmoid")
    projected = DPTHead(24, 16, OUT, input_projection=True, output="sigmoid")
    missing, unexpected = projected.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("input_projection.") for k in missing) and len(missing) == 16
    features = _tokens(1, 5, 5)
    with torch.no_grad():
        assert not torch.allclose(plain(features, 5, 5), projected(features, 5, 5))


def test_official_module_names():
    keys = set(DPTHead(24, 16, OUT, input_projection=True).state_dict())
    expected = {
        "projects.0.weight", "resize_layers.0.weight", "resize_layers.1.bias", "resize_layers.3.weight",
        "scratch.layer1_rn.weight", "scratch.layer4_rn.weight",
        "scratch.refinenet4.resConfUnit1.conv1.weight",  # unused by the coarsest block, but in every file
        "scratch.refinenet1.resConfUnit2.conv2.bias", "scratch.refinenet2.out_conv.weight",
        "scratch.output_conv1.weight", "scratch.output_conv2.0.weight", "scratch.output_conv2.2.bias",
        "input_projection.0.0.weight", "input_projection.3.1.bias",
    }
    assert expected <= keys
    assert not any(k.startswith("scratch.layer1_rn.bias") for k in keys)  # bias-free, as official


def test_fusion_block_upsamples_twice_or_to_size():
    block = FeatureFusionBlock(4)
    x = torch.randn(1, 4, 3, 5)
    assert block(x).shape == (1, 4, 6, 10)
    assert block(x, torch.randn(1, 4, 3, 5), size=(7, 9)).shape == (1, 4, 7, 9)


def test_rejects_unknown_output():
    with pytest.raises(ValueError, match="sigmoid"):
        DPTHead(24, 16, OUT, output="tanh")
