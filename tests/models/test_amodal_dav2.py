"""DepthAnythingV2 / AmodalDAV2: zero-guidance identity, interface, tiny config, files."""
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amodal.models.amodal_dav2 import TINY, AmodalDAV2, DepthAnythingV2, keep_aspect_size
from official_keys import official_shapes, random_state


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    dav2 = DepthAnythingV2(TINY).eval()
    amodal = AmodalDAV2(TINY).eval()
    amodal.load_state_dict(dav2.state_dict(), strict=False)
    return dav2, amodal


def test_zero_guidance_keeps_the_pretrained_tokens(pair):
    dav2, amodal = pair
    image = torch.rand(2, 3, 84, 70)
    mask = (torch.rand(2, 1, 84, 70) > 0.5).float()
    depth = torch.rand(2, 1, 84, 70)
    normed = (image - dav2.pixel_mean) / dav2.pixel_std
    with torch.no_grad():
        ours = amodal.encoder.forward_taps(normed, torch.cat([mask, depth], 1) * 2 - 1)
        base = dav2.encoder.forward_taps(normed)
        for a, b in zip(ours, base):
            assert torch.equal(a, b)
        # and a non-zero guidance does change them
        amodal.encoder.patch_embed_guidance.proj.weight.add_(0.01)
        moved = amodal.encoder.forward_taps(normed, torch.cat([mask, depth], 1) * 2 - 1)
        amodal.encoder.patch_embed_guidance.proj.weight.zero_()
    assert not torch.allclose(moved[0], base[0])


def test_guidance_is_mask_then_depth_mapped_to_plus_minus_one(pair):
    _, amodal = pair
    seen = {}
    hook = amodal.encoder.patch_embed_guidance.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    mask = torch.zeros(1, 1, 70, 70)
    mask[..., :30, :] = 1
    depth = torch.full((1, 1, 70, 70), 0.25)
    with torch.no_grad():
        out = amodal(torch.rand(1, 3, 70, 70), mask, depth)
    hook.remove()
    assert torch.equal(seen["x"][:, 0:1], mask * 2 - 1)
    assert torch.equal(seen["x"][:, 1:2], depth * 2 - 1)
    assert out.shape == (1, 1, 70, 70) and 0 <= out.min() and out.max() <= 1


def test_imagenet_normalisation_inside(pair):
    dav2, _ = pair
    image = torch.rand(1, 3, 70, 70)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = dav2.head(dav2.encoder.forward_taps((image - mean) / std), 5, 5)
        assert torch.equal(dav2(image), expected)


def test_tiny_config_keeps_every_code_path_of_the_full_ones():
    def pattern(model):
        return {re.sub(r"blocks\.\d+\.", "blocks.N.", k) for k in model.state_dict()}
    with torch.device("meta"):
        full_dav2, full_amodal = DepthAnythingV2("s"), AmodalDAV2("b")
    assert pattern(DepthAnythingV2(TINY)) == pattern(full_dav2)
    assert pattern(AmodalDAV2(TINY)) == pattern(full_amodal)
    assert len(TINY.taps) == 4 and TINY.img_size // 14 > 1  # resampling path exists too


def test_from_dav2_starts_from_dav2_with_zero_guidance(tmp_path):
    official = random_state(official_shapes(32, 4, 16, (8, 16, 32, 32), grid=5))  # TINY, official names
    torch.save(official, tmp_path / "dav2.pth")
    dav2 = DepthAnythingV2.from_pretrained(tmp_path / "dav2.pth", config=TINY)
    amodal = AmodalDAV2.from_dav2(tmp_path / "dav2.pth", config=TINY)
    state = amodal.state_dict()
    for key, value in dav2.state_dict().items():
        assert torch.equal(state[key], value), key
    assert torch.equal(amodal.encoder.blocks[3].mlp.fc2.weight, official["pretrained.blocks.3.mlp.fc2.weight"])
    assert not state["encoder.patch_embed_guidance.proj.weight"].any()
    assert state["head.input_projection.0.0.weight"].abs().sum() > 0  # fresh, not zero


def test_save_and_load_our_format(tmp_path, pair):
    _, amodal = pair
    amodal.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    again = AmodalDAV2.from_pretrained(tmp_path / "ckpt")
    assert again.config == TINY
    x = (torch.rand(1, 3, 70, 84), torch.ones(1, 1, 70, 84), torch.rand(1, 1, 70, 84))
    with torch.no_grad():
        assert torch.equal(again(*x), amodal(*x))
    with pytest.raises(ValueError, match="AmodalDAV2.from_pretrained"):
        DepthAnythingV2.from_pretrained(tmp_path / "ckpt")


def test_a_killed_save_leaves_a_loadable_pair(tmp_path, pair, monkeypatch):
    dav2, _ = pair
    folder = dav2.save_pretrained(tmp_path / "ckpt")
    (folder / "NOTES.md").write_text("kept")  # other files in the folder are left alone
    old_weights = (folder / "model.safetensors").read_bytes()
    bigger = DepthAnythingV2(dataclasses.replace(TINY, depth=5))

    def killed(state, path, metadata=None):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt  # the writer dies mid-file

    monkeypatch.setattr("safetensors.torch.save_file", killed)
    monkeypatch.setattr("amodal.models.amodal_dav2.save_file", killed, raising=False)
    with pytest.raises(KeyboardInterrupt):
        bigger.save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["NOTES.md", "config.json", "model.safetensors"]
    assert (folder / "model.safetensors").read_bytes() == old_weights
    # config.json already describes the new model; the old weights still load with their own
    assert json.loads((folder / "config.json").read_text())["config"]["depth"] == 5
    assert DepthAnythingV2.from_pretrained(folder).config == TINY


@pytest.mark.parametrize("hw, expected", [((480, 640), (518, 686)), ((1000, 500), (1036, 518)), ((518, 518), (518, 518)),
                                          ((300, 301), (518, 518))])
def test_keep_aspect_size_matches_official_resize(hw, expected):
    # 640·518/480 = 690.7 → 49.3 patches → 49·14 = 686; 300→301: 520.7 → 37.2 → 518
    assert keep_aspect_size(*hw) == expected


def test_infer_image_keeps_aspect_and_returns_input_resolution(pair):
    dav2, _ = pair
    rgb = np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    out = dav2.infer_image(rgb, input_size=70)
    assert out.shape == (30, 45) and out.dtype == np.float32
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        net = dav2(F.interpolate(image, (70, 112), mode="bicubic", align_corners=False))  # 45·70/30 = 105 → 7.5 → 8 patches
    expected = F.interpolate(net, (30, 45), mode="bilinear", align_corners=True)[0, 0].numpy()
    assert np.allclose(out, expected, atol=1e-6)
    assert np.allclose(dav2.infer_image(rgb.astype(np.float32) / 255, input_size=70), out, atol=1e-6)


def test_exact_and_fast_modes(tmp_path, pair):
    _, amodal = pair
    x = (torch.rand(1, 3, 84, 70), torch.ones(1, 1, 84, 70), torch.rand(1, 1, 84, 70))
    with torch.no_grad():
        fast = amodal(*x)
        amodal.set_exact(True)
        assert not any(block.attn.fused_attn for block in amodal.encoder.blocks)
        assert amodal.head.scratch.layer1_rn.weight.is_contiguous()
        exact = amodal(*x)
        amodal.set_exact(False)
    assert amodal.head.scratch.layer1_rn.weight.is_contiguous(memory_format=torch.channels_last)
    assert 0 < (fast - exact).abs().max() < 1e-5
    amodal.save_pretrained(tmp_path)  # the layout survives saving and loading
    loaded = AmodalDAV2.from_pretrained(tmp_path)
    assert loaded.head.scratch.layer1_rn.weight.is_contiguous(memory_format=torch.channels_last)
    assert AmodalDAV2.from_pretrained(tmp_path, exact=True).head.scratch.layer1_rn.weight.is_contiguous()


def test_bad_inputs(pair):
    dav2, amodal = pair
    with pytest.raises(ValueError, match="multiples of 14"):
        dav2(torch.rand(1, 3, 70, 71))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        dav2(torch.rand(1, 4, 70, 70))
    with pytest.raises(ValueError, match="amodal_mask"):
        amodal(torch.rand(1, 3, 70, 70), torch.ones(1, 1, 56, 70), torch.rand(1, 1, 70, 70))
    with pytest.raises(ValueError, match="observed_depth"):
        amodal(torch.rand(2, 3, 70, 70), torch.ones(2, 1, 70, 70), torch.rand(1, 1, 70, 70))
    with pytest.raises(ValueError, match="RGB"):
        dav2.infer_image(np.zeros((10, 10)))
    with pytest.raises(ValueError, match="size must be"):
        DepthAnythingV2("xl")


def test_forward_reads_no_values_back(pair):
    """Values are checked at the API boundary (predict, datasets), not in forward: a NaN
    passes through instead of costing a device sync on every call."""
    _, amodal = pair
    depth = torch.rand(1, 1, 70, 70)
    depth[0, 0, 3, 4] = float("nan")
    with torch.no_grad():
        out = amodal(torch.rand(1, 3, 70, 70), torch.ones(1, 1, 70, 70), depth)
    assert out.isnan().any()


@pytest.mark.slow
def test_amodal_dav2_compiles_as_one_graph(pair):
    _, amodal = pair
    compiled = torch.compile(amodal, backend="eager", fullgraph=True)  # a graph break raises
    x = (torch.rand(1, 3, 70, 84), (torch.rand(1, 1, 70, 84) > 0.5).float(), torch.rand(1, 1, 70, 84))
    with torch.no_grad():
        assert torch.equal(compiled(*x), amodal(*x))


class CountingBackend:
    """A torch.compile backend that counts the graphs it is given and the images they run on."""

    def __init__(self, image_height):
        self.graphs, self.batches, self.height = 0, [], image_height

    def __call__(self, graph, example_inputs):
        self.graphs += 1

        def run(*args):
            self.batches += [tuple(a.shape) for a in args if isinstance(a, torch.Tensor) and a.shape[1:3] == (3, self.height)]
            return graph.forward(*args)

        return run


@pytest.mark.slow
def test_photos_of_one_bucket_share_a_graph_and_a_batch():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = DepthAnythingV2(TINY).eval()
    backend = CountingBackend(image_height=70)
    model.compile(backend=backend, fullgraph=True)
    rng = np.random.default_rng(0)
    # 30×45, 32×48, 40×61: short side 70 → long side 105, 105, 106.75 → all 112 (8 patches)
    photos = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((30, 45), (32, 48), (40, 61))]
    assert {keep_aspect_size(*p.shape[:2], 70) for p in photos} == {(70, 112)}
    for photo in photos[:2]:
        model.infer_image(photo, input_size=70)
    assert backend.graphs == 1  # two photo sizes, one graph
    out = model.infer_images(photos, input_size=70, batch_size=4)
    assert backend.batches[-1] == (3, 3, 70, 112)  # three photo sizes, one batch
    assert [o.shape for o in out] == [p.shape[:2] for p in photos]
    model.infer_images(photos[:2], input_size=70)
    model.infer_images(photos * 2, input_size=70, batch_size=5)
    assert backend.batches[-2:] == [(5, 3, 70, 112), (1, 3, 70, 112)]
    assert backend.graphs == 2  # a batch of one has its own graph; every larger batch shares one
    torch._dynamo.reset()


def test_bfloat16_model_infers_and_returns_float32(pair):
    dav2, _ = pair
    low = DepthAnythingV2(TINY).eval()
    low.load_state_dict(dav2.state_dict())
    low.head.scratch.output_conv2[2].bias.data.fill_(1.0)  # a positive output to compare
    reference = DepthAnythingV2(TINY).eval()
    reference.load_state_dict(low.state_dict())
    low.to(torch.bfloat16)
    rgb = np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    out = low.infer_image(rgb, input_size=70)
    assert out.dtype == np.float32 and out.shape == (30, 45)
    expected = reference.infer_image(rgb, input_size=70)
    assert np.abs(out - expected).max() < 0.05 * np.abs(expected).max()  # bfloat16 keeps ~3 digits


def test_gradient_checkpointing_changes_memory_not_numbers(monkeypatch):
    """Activation checkpointing recomputes the blocks in backward: same loss, same gradients."""
    import torch.utils.checkpoint as ckpt

    from amodal.models.configs import TINY

    torch.manual_seed(0)
    model = AmodalDAV2(TINY)
    image, mask, depth = torch.rand(2, 3, 28, 28), (torch.rand(2, 1, 28, 28) > 0.5).float(), torch.rand(2, 1, 28, 28)

    def grads():
        model.zero_grad()
        model(image, mask, depth).square().mean().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = grads()
    calls = []
    real = ckpt.checkpoint
    monkeypatch.setattr(ckpt, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    model.set_gradient_checkpointing(True)
    checkpointed = grads()
    assert len(calls) == TINY.depth
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        model(image, mask, depth)
    assert len(calls) == TINY.depth  # nothing to save without gradients: no recomputation
