"""amodal.models.mask_completer: the U-Net's shapes, the crop geometry by hand, complete_mask's promises, files."""
import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import TINY
from amodal.models.mask_completer import (
    INPUT_CHANNELS,
    MaskCompleter,
    MaskCompleterConfig,
    complete_mask,
    completer_config,
    completer_inputs,
    convex_hull_completion,
    crop_box,
    cut,
    paste,
)

SMALL = MaskCompleterConfig(width=4, levels=2, input_size=16, groups=2)


def _constant(model: MaskCompleter, logit: float) -> MaskCompleter:
    """The model made to answer ``logit`` everywhere (its last layer zeroed but for the bias)."""
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.fill_(logit)
    return model


def test_the_network_maps_a_crop_to_logits_of_the_same_size():
    model = MaskCompleter("tiny")
    count = sum(p.numel() for p in model.parameters())
    assert 2e5 < count < 1e6  # "a few hundred thousand": 4 bytes each, well under 10 MB
    # by hand: two 3×3 convolutions (+ bias) and two GroupNorms (weight, bias) per block
    widths = [16, 32, 64, 128]
    def block(i, o):
        return i * o * 9 + o + o * o * 9 + o + 4 * o
    expected = (block(5, 16) + block(16, 32) + block(32, 64) + block(64, 128)
                + block(128 + 64, 64) + block(64 + 32, 32) + block(32 + 16, 16) + 16 + 1)
    assert count == expected and widths[-1] == 16 * 2 ** 3
    out = model(torch.randn(2, INPUT_CHANNELS, 64, 64))
    assert out.shape == (2, 1, 64, 64)
    with pytest.raises(ValueError, match=r"inputs must be \(B, 5, S, S\)"):
        model(torch.randn(2, 3, 64, 64))


def test_configs_refuse_shapes_the_network_cannot_take():
    with pytest.raises(ValueError, match="multiple of 2\\^levels = 8"):
        MaskCompleterConfig(input_size=60)
    with pytest.raises(ValueError, match="multiple of groups"):
        MaskCompleterConfig(width=6, groups=4)
    with pytest.raises(ValueError, match="unknown mask completer size 'huge'; known: tiny"):
        completer_config("huge")
    assert completer_config("tiny", 32).input_size == 32
    with pytest.raises(ValueError, match="unknown field"):
        MaskCompleterConfig.from_dict({"width": 8, "depth": 3})


def test_convex_hull_fills_between_two_blocks():
    visible = np.zeros((6, 12), bool)
    visible[1:4, 0:3] = True
    visible[1:4, 8:11] = True
    expected = np.zeros((6, 12), bool)
    expected[1:4, 0:11] = True
    np.testing.assert_array_equal(convex_hull_completion(visible), expected)
    assert not convex_hull_completion(np.zeros((4, 4), bool)).any()


def test_crop_box_by_hand():
    visible = np.zeros((40, 40), bool)
    visible[10:20, 20:25] = True  # 10 rows, 5 columns
    # side ceil(10 · (1 + 2 · 0.5)) = 20; centre row 15 → top 5; centre column 22.5 → left floor(12.5) = 12
    assert crop_box(visible, 0.5) == (5, 12, 20)
    assert crop_box(visible, 0.0) == (10, 17, 10)
    one = np.zeros((5, 5), bool)
    one[0, 0] = True
    assert crop_box(one, 0.5) == (-4, -4, 8)  # at least 8 pixels, reaching past the corner
    with pytest.raises(ValueError, match="visible_mask is empty"):
        crop_box(np.zeros((5, 5), bool))


def test_cut_pads_outside_the_photo():
    array = np.arange(16).reshape(4, 4) + 1
    window, inside = cut(array, (-1, 2, 3))
    expected = np.array([[0, 0, 0], [3, 4, 0], [7, 8, 0]])
    np.testing.assert_array_equal(window, expected)
    np.testing.assert_array_equal(inside, expected > 0)
    window, inside = cut(array, (10, 10, 2))  # wholly outside
    assert not window.any() and not inside.any()


def test_inputs_are_standardised_image_visible_mask_and_hull():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    visible = np.zeros((12, 12), bool)
    visible[4:8, 4:6] = True
    visible[4:6, 6:8] = True  # an L: its hull adds the triangle's pixels
    box = (2, 2, 8)
    inputs = completer_inputs(image, visible, box, 8).numpy()  # side 8 → size 8: no resampling
    crop = image[2:10, 2:10].astype(np.float64) / 255
    expected = (crop - crop.mean((0, 1))) / (crop.std((0, 1)) + 0.05)
    np.testing.assert_allclose(inputs[:3].transpose(1, 2, 0), expected, atol=1e-5)
    np.testing.assert_array_equal(inputs[3], 2.0 * visible[2:10, 2:10] - 1)
    hull = visible[2:10, 2:10].copy()
    hull[6 - 2, 6 - 2] = True  # the hull of the L adds (6, 6) alone: inside the cut from (5, 7) to (7, 5)
    np.testing.assert_array_equal(inputs[4], 2.0 * hull - 1)
    # the part of a crop outside the photo is 0 in the image channels
    corner = completer_inputs(image, visible, (-4, -4, 8), 8).numpy()
    assert (corner[:3, :4, :] == 0).all() and (corner[:3, :, :4] == 0).all()
    with pytest.raises(ValueError, match="visible_mask has shape"):
        completer_inputs(image, visible[:5], box, 8)


def test_paste_puts_the_crop_where_the_box_is_and_drops_what_falls_outside():
    out = paste(torch.ones(4, 4), (-2, 3, 6), (5, 7))
    expected = np.zeros((5, 7), np.float32)
    expected[0:4, 3:7] = 1  # rows −2…3 and columns 3…8 of a 5 × 7 photo
    np.testing.assert_array_equal(out, expected)


def test_complete_mask_contains_the_visible_mask_and_handles_the_border():
    torch.manual_seed(0)
    model = MaskCompleter(SMALL)
    image = np.random.default_rng(1).random((30, 40, 3)).astype(np.float32)
    visible = np.zeros((30, 40), bool)
    visible[0:6, 33:40] = True  # in the top-right corner
    out = complete_mask(image, visible, model)
    assert out.shape == (30, 40) and out.dtype == bool and (out | ~visible).all()
    # a model that says "no" everywhere gives M_vis itself; one that says "yes", the crop inside the photo
    np.testing.assert_array_equal(complete_mask(image, visible, _constant(model, -20.0)), visible)
    everything = complete_mask(image, visible, _constant(model, 20.0))
    top, left, side = crop_box(visible, SMALL.margin)  # 7 columns → side ceil(7 · 2) = 14
    assert (top, left, side) == (-4, 29, 14)
    expected = np.zeros((30, 40), bool)
    expected[0:top + side, left:40] = True
    np.testing.assert_array_equal(everything, expected)
    # torch inputs as the datasets hold them
    out = complete_mask(torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(visible).float(), model)
    np.testing.assert_array_equal(out, expected)


def test_complete_mask_refuses_an_empty_visible_mask():
    model = MaskCompleter(SMALL)
    with pytest.raises(ValueError, match="visible_mask is empty: there is nothing to complete"):
        complete_mask(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), bool), model)
    with pytest.raises(ValueError, match=r"image must be \(H, W, 3\)"):
        complete_mask(np.zeros((10, 10), np.uint8), np.ones((10, 10), bool), model)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = MaskCompleter(SMALL).eval()
    model.save_pretrained(tmp_path / "completer")
    record = json.loads((tmp_path / "completer" / "config.json").read_text())
    assert record == {"model": "MaskCompleter", "config": {"width": 4, "levels": 2, "input_size": 16, "margin": 0.5,
                                                           "groups": 2}}
    loaded = MaskCompleter.from_pretrained(tmp_path / "completer")
    x = torch.randn(1, INPUT_CHANNELS, 16, 16)
    assert torch.equal(model(x), loaded(x)) and not loaded.training
    assert math.isclose(loaded.config.margin, 0.5)
    loaded = MaskCompleter.from_pretrained(tmp_path / "completer" / "model.safetensors")
    assert torch.equal(model(x), loaded(x))


def test_loading_the_wrong_file_says_what_it_is(tmp_path):
    AmodalDAV2(TINY).save_pretrained(tmp_path / "dav2")
    with pytest.raises(ValueError, match="holds an AmodalDAV2, not a MaskCompleter: load it with AmodalDAV2.from_pretrained"):
        MaskCompleter.from_pretrained(tmp_path / "dav2")
    with pytest.raises(FileNotFoundError):
        MaskCompleter.from_pretrained(tmp_path / "missing")
    # weights of a wider network under the small one's config
    record = {"model": "MaskCompleter", "config": {"width": 4, "levels": 2, "input_size": 16, "margin": 0.5, "groups": 2}}
    state = MaskCompleter(MaskCompleterConfig(width=8, levels=2, input_size=16, groups=2)).state_dict()
    (tmp_path / "small").mkdir()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "small" / "model.safetensors"),
              metadata={"amodal_config": json.dumps(record)})
    with pytest.raises(ValueError, match="(?s)does not fit MaskCompleter.*wrong shape"):
        MaskCompleter.from_pretrained(tmp_path / "small")
