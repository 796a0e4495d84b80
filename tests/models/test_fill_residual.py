"""The small models' variant of Amodal-DAV2 that corrects a harmonic fill (``DAV2Config.fill_residual``)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from amodal.baselines import harmonic, harmonic_batch
from amodal.inference import predict
from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2
from amodal.models.configs import TINY, TINY_SYNTH

RESIDUAL = replace(TINY, fill_residual=0.2)
SIZE = 28


def replace_config(model, fill_residual):
    """The same weights as a network with another ``fill_residual``."""
    twin = AmodalDAV2(replace(model.config, fill_residual=fill_residual)).eval()
    twin.load_state_dict(model.state_dict())
    return twin


def _maps(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    amodal = torch.zeros(batch, 1, SIZE, SIZE)
    amodal[:, :, 5:23, 4:24] = 1
    visible = amodal.clone()
    visible[0, :, :, 14:] = 0
    visible[1, :, 12:, :] = 0
    observed = torch.rand(batch, 1, SIZE, SIZE, generator=g)
    return torch.rand(batch, 3, SIZE, SIZE, generator=g), amodal, observed, visible


def _constant_head(model, bias):
    """Zero the last convolution and set its bias: the sigmoid head then outputs sigmoid(bias) everywhere."""
    last = model.head.scratch.output_conv2[2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(bias)


def test_harmonic_batch_is_the_per_item_fill():
    _, amodal, observed, visible = _maps()
    out = harmonic_batch(amodal, observed, visible)
    assert out.shape == observed.shape and out.dtype == observed.dtype
    for b in range(2):
        expected = harmonic(None, amodal[b, 0].numpy(), observed[b, 0].numpy(), visible[b, 0].numpy())
        np.testing.assert_array_equal(out[b, 0].numpy(), expected)


def test_output_is_the_fill_plus_a_bounded_correction():
    torch.manual_seed(0)
    model = AmodalDAV2(RESIDUAL).eval()
    image, amodal, observed, visible = _maps()
    _constant_head(model, 2.0)
    fill = harmonic_batch(amodal, observed, visible)
    with torch.no_grad():
        out = model(image, amodal, observed, visible)
    expected = (fill + 0.2 * (torch.sigmoid(torch.tensor(2.0)) - 0.5)).clamp(0, 1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    # the guidance is the fill, not D_o: the network sees the hidden part filled
    with torch.no_grad():  # the guidance embedding starts at zero; make it count
        model.encoder.patch_embed_guidance.proj.weight.normal_(0, 0.5)
        tokens = model.features(image, amodal, observed, visible)
        from_fill = AmodalDAV2.features(replace_config(model, 0.0), image, amodal, fill)
        from_observed = AmodalDAV2.features(replace_config(model, 0.0), image, amodal, observed)
    assert all(torch.equal(a, b) for a, b in zip(tokens, from_fill))
    assert not all(torch.equal(a, b) for a, b in zip(tokens, from_observed))


def test_paper_network_ignores_the_visible_mask_and_fill_network_needs_it():
    torch.manual_seed(0)
    paper = AmodalDAV2(TINY).eval()
    image, amodal, observed, visible = _maps()
    with torch.no_grad():
        assert torch.equal(paper(image, amodal, observed), paper(image, amodal, observed, visible))
    assert not paper.needs_visible_mask
    residual = AmodalDAV2(RESIDUAL)
    assert residual.needs_visible_mask
    with pytest.raises(ValueError, match="needs visible_mask"):
        residual(image, amodal, observed)
    with pytest.raises(ValueError, match="visible_mask must have"):
        residual(image, amodal, observed, visible[:, :, :10])
    with pytest.raises(ValueError, match="fill_residual is a setting of Amodal-DAV2"):
        DepthAnythingV2(RESIDUAL)


def test_the_setting_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = AmodalDAV2(RESIDUAL)
    model.save_pretrained(tmp_path)
    loaded = AmodalDAV2.from_pretrained(tmp_path)
    assert loaded.config.fill_residual == 0.2
    image, amodal, observed, visible = _maps()
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, amodal, observed, visible), model.eval()(image, amodal, observed, visible))


def test_predict_needs_the_visible_mask_and_runs_at_the_trained_size():
    torch.manual_seed(0)
    model = AmodalDAV2(replace(RESIDUAL, img_size=42)).eval()
    _constant_head(model, 0.0)  # correction 0: the output is the fill itself
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (42, 42, 3), dtype=np.uint8)
    amodal = np.zeros((42, 42), bool)
    amodal[8:34, 6:36] = True
    visible = amodal.copy()
    visible[:, 20:] = False
    observed = np.tile(np.linspace(0.1, 0.9, 42), (42, 1))
    with pytest.raises(ValueError, match="give visible_mask"):
        predict(rgb, amodal, model, observed_depth=observed)
    out = predict(rgb, amodal, model, observed_depth=observed, visible_mask=visible)
    fill = harmonic(None, amodal, observed, visible)
    inner = np.zeros_like(amodal)
    inner[9:33, 7:35] = True  # away from the blended seam, at the trained size no resampling happens
    np.testing.assert_allclose(out[inner], fill[inner], atol=1e-6)


def test_tiny_synth_shape():
    assert TINY_SYNTH.fill_residual == 0.2 and TINY_SYNTH.img_size == 112
    n = sum(p.numel() for p in AmodalDAV2(TINY_SYNTH).parameters())
    assert 1.0e6 < n < 2.5e6  # a few MB of float32: the shipped checkpoint stays well under 10 MB
