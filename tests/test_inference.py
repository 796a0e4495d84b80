"""amodal.inference.predict: paste the amodal depth into D_o with the official seam blend."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amodal.models.amodal_dav2 import TINY, AmodalDAV2, DepthAnythingV2
from amodal.adiw.depth import normalise_disparity
from amodal.inference import blend_border, load_model, load_predictor, model_or_stand_in, object_crop, predict


def _reference_blend(observed, amodal, mask):
    """Loops: paste, then the 3×3 mean (reflect-101 border) where 0 < mask count < 9."""
    h, w = mask.shape
    pasted = np.where(mask, amodal, observed).astype(np.float64)
    out = pasted.copy()
    reflect = lambda i, n: -i if i < 0 else (2 * (n - 1) - i if i >= n else i)
    for y in range(h):
        for x in range(w):
            count = sum(mask[y + dy, x + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                        if 0 <= y + dy < h and 0 <= x + dx < w)
            if 0 < count < 9:
                out[y, x] = np.mean([pasted[reflect(y + dy, h), reflect(x + dx, w)] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    return out


def test_blend_border_matches_loops():
    rng = np.random.default_rng(0)
    observed, amodal = rng.random((9, 12)), rng.random((9, 12))
    mask = np.zeros((9, 12), bool)
    mask[2:7, 0:5] = True  # touches the left border
    mask[4, 8] = True
    out = blend_border(torch.from_numpy(observed), torch.from_numpy(amodal), torch.from_numpy(mask))
    assert np.allclose(out.numpy(), _reference_blend(observed, amodal, mask), atol=1e-12)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    base = DepthAnythingV2(TINY).eval()
    with torch.no_grad():  # random weights give all-zero ReLU output; lift it so it varies
        base.head.scratch.output_conv2[2].bias.fill_(1.0)
    return AmodalDAV2(TINY).eval(), base


def _scene():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:30, 15:45] = True
    return rgb, mask


def test_predict_pastes_the_amodal_output_inside_the_mask(models, monkeypatch):
    model, base = models
    monkeypatch.setattr("amodal.inference.INPUT_SIZE", 70)  # tiny model, small square input
    rgb, mask = _scene()
    observed = np.linspace(0, 1, 40 * 60).reshape(40, 60)
    out = predict(rgb, mask, model, observed_depth=observed, crop=None)  # the whole photo, as the official demo
    assert out.shape == (40, 60) and out.dtype == np.float32
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    squash = lambda x: F.interpolate(x, (70, 70), mode="nearest-exact")
    with torch.no_grad():
        net = model(squash(image), squash(torch.from_numpy(mask)[None, None].float()),
                    squash(torch.from_numpy(observed)[None, None].float()))
    net = F.interpolate(net, (40, 60), mode="bilinear", align_corners=False)[0, 0].numpy()
    expected = _reference_blend(observed, net, mask)
    assert np.allclose(out, expected, atol=1e-6)
    assert np.array_equal(out[:8], observed[:8].astype(np.float32))  # far outside: D_o untouched


def test_predict_takes_observed_depth_from_the_base_model(models, monkeypatch):
    model, base = models
    monkeypatch.setattr("amodal.inference.INPUT_SIZE", 70)
    rgb, mask = _scene()
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    # D_o by hand: DAV2 sees the photo with short side 518, aspect kept, sides multiples of 14:
    # 40×60 → 518 × 777 → 55.5 patches, rounded to 56 → (518, 784); back bilinearly; min-max
    with torch.no_grad():
        net = base(F.interpolate(image, (518, 784), mode="bicubic", align_corners=False))
    d = F.interpolate(net, (40, 60), mode="bilinear", align_corners=True)[0, 0].double().numpy()
    observed = (d - d.min()) / (d.max() - d.min())
    squash = lambda x: F.interpolate(x, (70, 70), mode="nearest-exact")
    with torch.no_grad():
        amodal = model(squash(image), squash(torch.from_numpy(mask)[None, None].float()),
                       squash(torch.from_numpy(observed)[None, None].float()))
    amodal = F.interpolate(amodal, (40, 60), mode="bilinear", align_corners=False)[0, 0].double().numpy()
    expected = _reference_blend(observed, amodal, mask)
    assert np.allclose(predict(rgb, mask, model, base, crop=None), expected, atol=1e-5)


def test_object_crop_by_hand():
    mask = torch.zeros(40, 60, dtype=torch.bool)
    mask[10:30, 15:45] = True                      # box 20 × 30, centre (20, 30)
    assert object_crop(mask, 0.0) == (5, 35, 15, 45)     # square 30: rows 5..35
    assert object_crop(mask, 0.25) == (0, 40, 7, 52)     # 45 > 40 rows: the full height; columns from 7.5, down
    corner = torch.zeros(40, 60, dtype=torch.bool)
    corner[0:4, 56:60] = True                       # at the corner: shifted inside, not shrunk
    assert object_crop(corner, 0.5) == (0, 8, 52, 60)
    with pytest.raises(ValueError, match="empty"):
        object_crop(torch.zeros(4, 4, dtype=torch.bool), 0.1)
    with pytest.raises(ValueError, match="≥ 0"):
        object_crop(mask, -0.1)


def test_predict_on_the_object_centred_crop(models):
    model, _ = models
    rgb, mask = _scene()
    observed = np.linspace(0, 1, 40 * 60).reshape(40, 60)
    out = predict(rgb, mask, model, observed_depth=observed, crop=0.0, size=70)
    # by hand: rows 5..35, columns 15..45; D_o min-max normalised within the crop; back by the inverse map
    top, bottom, left, right = 5, 35, 15, 45
    crop_observed = observed[top:bottom, left:right]
    low, high = crop_observed.min(), crop_observed.max()
    image = torch.from_numpy(rgb[top:bottom, left:right]).permute(2, 0, 1)[None].float() / 255
    squash = lambda x: F.interpolate(x, (70, 70), mode="nearest-exact")
    with torch.no_grad():
        net = model(squash(image), squash(torch.from_numpy(mask[top:bottom, left:right])[None, None].float()),
                    squash(torch.from_numpy((crop_observed - low) / (high - low))[None, None].float()))
    net = F.interpolate(net, (30, 30), mode="bilinear", align_corners=False)[0, 0].double().numpy() * (high - low) + low
    full = observed.copy()
    full[top:bottom, left:right] = net
    assert np.allclose(out, _reference_blend(observed, full, mask), atol=1e-5)


def test_package_exports_the_function():
    import amodal

    assert amodal.predict is predict


def test_predict_runs_bfloat16_models(models, monkeypatch):
    model, base = models
    monkeypatch.setattr("amodal.inference.INPUT_SIZE", 70)
    rgb, mask = _scene()
    low_model, low_base = AmodalDAV2(TINY).eval(), DepthAnythingV2(TINY).eval()
    low_model.load_state_dict(model.state_dict())
    low_base.load_state_dict(base.state_dict())
    low_model.to(torch.bfloat16), low_base.to(torch.bfloat16)
    out = predict(rgb, mask, low_model, low_base)
    assert out.dtype == np.float32 and out.shape == (40, 60)
    reference = predict(rgb, mask, model, base)
    assert np.abs(out - reference).mean() < 0.03 and np.corrcoef(out.ravel(), reference.ravel())[0, 1] > 0.98


def test_predict_errors(models):
    model, base = models
    rgb, mask = _scene()
    with pytest.raises(ValueError, match="empty"):
        predict(rgb, np.zeros_like(mask), model, base)
    with pytest.raises(ValueError, match="amodal_mask"):
        predict(rgb, mask[:30], model, base)
    with pytest.raises(ValueError, match="base_model"):
        predict(rgb, mask, model)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predict(rgb, mask, model, observed_depth=np.full((40, 60), 2.0))
    nan_depth = np.full((40, 60), 0.5)
    nan_depth[5, 5] = np.nan
    with pytest.raises(ValueError, match="observed_depth holds NaN"):
        predict(rgb, mask, model, observed_depth=nan_depth)
    with pytest.raises(ValueError, match="finite"):
        predict(np.full((40, 60, 3), np.nan, np.float32), mask, model, base)
    with pytest.raises(ValueError, match=r"amodal_mask must lie in \[0, 1\]"):  # a 0/255 PNG, not {0, 1}
        predict(rgb, mask.astype(np.uint8) * 255, model, observed_depth=np.full((40, 60), 0.5))
    with pytest.raises(ValueError, match="constant"):
        normalise_disparity(np.ones((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        normalise_disparity(np.array([0.0, np.inf]))


def test_predict_without_the_blend_pastes_the_network_output(models):
    model, _ = models
    rgb, mask = _scene()
    observed = np.linspace(0, 1, 40 * 60).reshape(40, 60)
    blended = predict(rgb, mask, model, observed_depth=observed)
    plain = predict(rgb, mask, model, observed_depth=observed, blend=False)
    np.testing.assert_array_equal(plain[~mask], observed[~mask].astype(np.float32))  # outside: D_o exactly, no seam
    inner = np.zeros_like(mask)
    inner[11:29, 16:44] = True  # away from the seam the two agree
    np.testing.assert_allclose(plain[inner], blended[inner], atol=1e-7)
    assert not np.allclose(plain, blended)


def test_load_model_from_a_folder_and_its_errors(tmp_path):
    from amodal.models.amodal_dav2 import AmodalDAV2

    AmodalDAV2(TINY).save_pretrained(tmp_path / "model")
    assert isinstance(load_model(tmp_path / "model"), AmodalDAV2)
    with pytest.raises(FileNotFoundError, match="Amodal-DAV2 checkpoint not found"):
        load_model(tmp_path / "missing")


def test_model_or_stand_in(tmp_path):
    from amodal.inference import model_or_stand_in
    from amodal.models.amodal_dav2 import AmodalDAV2

    model, sentence = model_or_stand_in(tmp_path / "missing")
    assert model.config == TINY and "stands in" in sentence and not model.training
    AmodalDAV2(TINY).save_pretrained(tmp_path / "model")
    loaded, sentence = model_or_stand_in(tmp_path / "model")
    assert isinstance(loaded, AmodalDAV2) and "stands in" not in sentence


def test_load_predictor_knows_each_kind(tmp_path):
    from amodal.baselines import BASELINES
    from amodal.data.streams import SynthStream

    item = SynthStream(seed=3, size=28)[0]
    harmonic = load_predictor("baseline:harmonic")(item)
    expected = BASELINES["harmonic"](None, item["amodal_mask"][0].numpy() > 0.5, item["observed_depth"][0].numpy(),
                                     item["visible_mask"][0].numpy() > 0.5)
    np.testing.assert_array_equal(harmonic, expected)
    np.save(tmp_path / f"{item['id']}.npy", np.full((28, 28), 0.25, np.float32))
    np.testing.assert_array_equal(load_predictor(f"predictions:{tmp_path}")(item), np.full((28, 28), 0.25, np.float32))
    AmodalDAV2(TINY).save_pretrained(tmp_path / "model")
    assert load_predictor(str(tmp_path / "model"))(item).shape == (28, 28)
    with pytest.raises(ValueError, match="unknown baseline 'nope'"):
        load_predictor("baseline:nope")
    with pytest.raises(FileNotFoundError, match="predictions: no such folder"):
        load_predictor(f"predictions:{tmp_path / 'missing'}")
    with pytest.raises(FileNotFoundError, match="Depth Anything V2 checkpoint not found"):
        load_predictor(f"dav2:{tmp_path / 'missing.pth'}")
    with pytest.raises(FileNotFoundError, match="Amodal-DAV2 checkpoint not found"):
        load_predictor(str(tmp_path / "missing"))


@pytest.mark.parametrize("observed, says", [
    (np.ones((14, 14), bool), "observed_depth must hold real numbers, got dtype bool"),
    (np.full((14, 14), 0.5 + 0.1j), "observed_depth must hold real numbers, got dtype complex128"),
    (np.full((14, 14), "0.5"), "observed_depth must hold real numbers, got dtype <U3"),
    (torch.ones(14, 14, dtype=torch.bool), "observed_depth must hold real numbers, got dtype torch.bool"),
])
def test_a_depth_of_the_wrong_kind_is_refused(observed, says):
    image = np.zeros((14, 14, 3), np.uint8)
    mask = np.zeros((14, 14), bool)
    mask[4:10, 4:10] = True
    with pytest.raises(ValueError, match=re.escape(says)):
        predict(image, mask, AmodalDAV2(TINY).eval(), observed_depth=observed)


def test_a_bool_mask_is_fine():
    image = np.zeros((14, 14, 3), np.uint8)
    mask = np.zeros((14, 14), bool)
    mask[4:10, 4:10] = True
    depth = predict(image, mask, AmodalDAV2(TINY).eval(), observed_depth=np.linspace(0, 1, 196).reshape(14, 14))
    assert depth.shape == (14, 14) and np.isfinite(depth).all()


def test_models_load_by_hub_id_and_a_missing_one_is_named(hub_cache, tmp_path):
    from hub_testdata import add_to_cache, folder_files

    torch.manual_seed(1)
    AmodalDAV2(TINY).save_pretrained(tmp_path / "amodal")
    DepthAnythingV2(TINY).save_pretrained(tmp_path / "dav2")
    add_to_cache(hub_cache, "zhyever/Amodal-Depth-Anything-DAV2", folder_files(tmp_path / "amodal"))
    add_to_cache(hub_cache, "someone/tiny-dav2", folder_files(tmp_path / "dav2"))
    expected = AmodalDAV2.from_pretrained(tmp_path / "amodal").state_dict()
    loaded = load_model("zhyever/Amodal-Depth-Anything-DAV2")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())
    model, sentence = model_or_stand_in("zhyever/Amodal-Depth-Anything-DAV2")
    assert "stands in" not in sentence and torch.equal(model.encoder.cls_token, expected["encoder.cls_token"])
    assert load_predictor("dav2:someone/tiny-dav2") is not None
    # a path in a folder of the checkout is a path, even shaped like ORG/NAME: the stand-in, no hub
    assert "stands in" in model_or_stand_in("checkpoints/no-such-model")[1]
    with pytest.raises(FileNotFoundError, match="hf download someone/other model.safetensors"):
        model_or_stand_in("someone/other")


def test_photo_predictor_is_predict_on_the_item_as_a_photo(models):
    from amodal.data.items import evaluation_items
    from amodal.inference import photo_predictor

    amodal = models[0]
    item = evaluation_items("synth", 1, 56, seed=3)[0]
    maps = {k: item[k][0].numpy() for k in ("amodal_mask", "observed_depth", "visible_mask")}
    for crop in (None, 0.25):
        expected = predict(item["image"], maps["amodal_mask"], amodal, observed_depth=maps["observed_depth"],
                           visible_mask=maps["visible_mask"], blend=False, crop=crop, size=28)
        np.testing.assert_array_equal(photo_predictor(amodal, crop, size=28)(item), expected)
    assert not np.array_equal(photo_predictor(amodal, None, 28)(item), photo_predictor(amodal, 0.25, 28)(item))
