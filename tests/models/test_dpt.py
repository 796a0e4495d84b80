"""DPT head: channel LayerNorm, shapes, activations, official module names, and the whole forward
against the official computation written out in float64."""
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


def _reference_head(head, features, h, w):
    """The official DPT forward written out with functional ops on the head's weights, float64."""
    p = {k: v.double() for k, v in head.state_dict().items()}

    def conv(x, name, **kw):
        return F.conv2d(x, p[name + ".weight"], p.get(name + ".bias"), **kw)

    def rcu(x, name):  # residual conv unit: x + conv2(relu(conv1(relu(x))))
        out = conv(F.relu(x), name + ".conv1", padding=1)
        return x + conv(F.relu(out), name + ".conv2", padding=1)

    def fuse(name, x, skip=None, size=None):
        if skip is not None:
            x = x + rcu(skip, name + ".resConfUnit1")
        x = rcu(x, name + ".resConfUnit2")
        x = F.interpolate(x, size=size, scale_factor=None if size else 2, mode="bilinear", align_corners=True)
        return conv(x, name + ".out_conv")

    levels = []
    for i, tokens in enumerate(features):
        x = tokens.double().transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
        x = conv(x, f"projects.{i}")
        if i in (0, 1):
            x = F.conv_transpose2d(x, p[f"resize_layers.{i}.weight"], p[f"resize_layers.{i}.bias"], stride=(4, 2)[i])
        elif i == 3:
            x = conv(x, "resize_layers.3", stride=2, padding=1)
        if head.input_projection is not None:
            x = conv(x, f"input_projection.{i}.0", padding=1)
            mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
            x = (x - mean) / torch.sqrt(var + 1e-6)
            x = F.relu(p[f"input_projection.{i}.1.weight"].view(-1, 1, 1) * x + p[f"input_projection.{i}.1.bias"].view(-1, 1, 1))
        levels.append(conv(x, f"scratch.layer{i + 1}_rn", padding=1))
    l1, l2, l3, l4 = levels
    path = fuse("scratch.refinenet4", l4, size=l3.shape[2:])
    path = fuse("scratch.refinenet3", path, l3, size=l2.shape[2:])
    path = fuse("scratch.refinenet2", path, l2, size=l1.shape[2:])
    path = fuse("scratch.refinenet1", path, l1)
    out = conv(path, "scratch.output_conv1", padding=1)
    out = F.interpolate(out, (h * 14, w * 14), mode="bilinear", align_corners=True)
    out = conv(F.relu(conv(out, "scratch.output_conv2.0", padding=1)), "scratch.output_conv2.2")
    return torch.sigmoid(out) if head.input_projection is not None else F.relu(out)


@pytest.mark.parametrize("amodal", [False, True])
def test_head_matches_the_official_forward_written_out(amodal):
    torch.manual_seed(0)
    head = DPTHead(24, 16, OUT, input_projection=amodal, output="sigmoid" if amodal else "relu").eval()
    with torch.no_grad():
        for param in head.parameters():  # biases and the LayerNorm affine off their 0 / 1 init
            if param.ndim == 1:
                param.add_(torch.randn_like(param) * 0.2)
        head.scratch.output_conv2[2].bias.fill_(0.1)  # keep the last ReLU off zero
        features = _tokens(2, 4, 5)
        out = head(features, 4, 5)
    reference = _reference_head(head, features, 4, 5)
    assert out.shape == reference.shape == (2, 1, 56, 70)
    torch.testing.assert_close(out.double(), reference, rtol=0, atol=1e-6)
    assert reference.std() > 1e-3  # not a degenerate all-zero / all-saturated map
