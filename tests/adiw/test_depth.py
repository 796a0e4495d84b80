"""Tests for amodal.adiw.depth: normalisation, the oracle stand-in, the toy prior, DAV2 batching."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amodal.adiw.depth import (
    DAV2Depth,
    DepthEstimator,
    OracleDepth,
    RowPriorDepth,
    as_float_image,
    load_estimator,
    normalise_disparity,
    smooth_noise,
)
from amodal.models.amodal_dav2 import TINY, DepthAnythingV2


def image_and_disparity(seed=0, shape=(20, 30)):
    rng = np.random.default_rng(seed)
    return rng.random((*shape, 3)).astype(np.float32), rng.uniform(0.1, 2.0, shape)


def test_normalise_is_min_max():
    d = np.array([[2.0, 4.0], [6.0, 10.0]])
    assert np.allclose(normalise_disparity(d), (d - 2) / 8)
    with pytest.raises(ValueError, match="constant"):
        normalise_disparity(np.ones((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        normalise_disparity(np.array([[1.0, np.nan]]))


def test_as_float_image():
    u8 = np.full((2, 2, 3), 255, np.uint8)
    assert as_float_image(u8).max() == 1.0
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        as_float_image(np.zeros((2, 2)))


def test_exact_oracle_returns_the_truth():
    image, disparity = image_and_disparity()
    oracle = OracleDepth()
    assert isinstance(oracle, DepthEstimator)
    oracle.remember(image, disparity)
    (d,) = oracle.predict([image])
    assert d.dtype == np.float32
    assert np.allclose(d, (disparity - disparity.min()) / (disparity.max() - disparity.min()), atol=1e-6)
    with pytest.raises(ValueError, match="remember"):
        oracle.predict([image + 0.001])


def test_noisy_oracle_is_normalised_repeatable_and_not_exact():
    image, disparity = image_and_disparity(1)
    oracle = OracleDepth(noise_std=0.01, smooth_noise_std=0.02, gamma_range=(0.8, 1.25), seed=3)
    oracle.remember(image, disparity)
    a, b = oracle.predict([image])[0], oracle.predict([image])[0]
    assert np.array_equal(a, b) and a.min() == 0 and a.max() == 1
    truth = normalise_disparity(disparity)
    err = np.abs(a - truth).mean()
    assert 0.005 < err < 0.2


def test_affine_only_oracle_is_exact_after_normalisation():
    # an affine map with positive scale disappears in min-max normalisation
    image, disparity = image_and_disparity(2)
    oracle = OracleDepth(noise_std=1e-12)
    oracle.remember(image, disparity)
    assert np.allclose(oracle.predict([image])[0], normalise_disparity(disparity), atol=1e-6)


def test_smooth_noise_is_unit_and_smooth():
    field = smooth_noise((64, 64), np.random.default_rng(0))
    assert field.std() == pytest.approx(1.0) and abs(field.mean()) < 1e-9
    # neighbouring pixels are strongly correlated, unlike white noise
    assert np.corrcoef(field[:, 1:].ravel(), field[:, :-1].ravel())[0, 1] > 0.9


def test_row_prior():
    (d,) = RowPriorDepth().predict([np.zeros((5, 4, 3), np.uint8)])
    assert np.allclose(d[:, 0], [0, 0.25, 0.5, 0.75, 1.0]) and (d == d[:, :1]).all()


def test_load_estimator_specs(tmp_path):
    assert isinstance(load_estimator("row-prior"), RowPriorDepth)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_estimator(str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="unknown depth estimator"):
        load_estimator("midas")


def _hand_dav2(model, image, size):
    """DAV2's preprocessing spelled out: bicubic to ``size``, network, bilinear back
    (corners aligned), min-max in float64."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        net = model(F.interpolate(x, size, mode="bicubic", align_corners=False))
    d = F.interpolate(net, image.shape[:2], mode="bilinear", align_corners=True)[0, 0].double().numpy()
    return (d - d.min()) / (d.max() - d.min())


@pytest.fixture(scope="module")
def tiny_dav2_folder(tmp_path_factory):
    torch.manual_seed(0)
    model = DepthAnythingV2(TINY).eval()
    with torch.no_grad():  # random weights give an all-zero ReLU output; lift it so it varies
        model.head.scratch.output_conv2[2].bias.fill_(1.0)
    return model, model.save_pretrained(tmp_path_factory.mktemp("tiny"))


def test_dav2_estimator_follows_the_official_preprocessing(tiny_dav2_folder):
    model, folder = tiny_dav2_folder
    estimator = DAV2Depth(folder, batch_size=2, input_size=28)
    rng = np.random.default_rng(0)
    # short side 28: 30×40 and 33×44 → long side 37.3 → 3 patches → (28, 42); 20×20 → (28, 28)
    shapes_and_sizes = [((30, 40), (28, 42)), ((33, 44), (28, 42)), ((30, 40), (28, 42)), ((20, 20), (28, 28))]
    images = [rng.integers(0, 255, (*shape, 3), dtype=np.uint8) for shape, _ in shapes_and_sizes]
    out = estimator.predict(images)
    for image, (shape, size), d in zip(images, shapes_and_sizes, out):
        assert d.shape == shape and d.dtype == np.float32
        assert np.allclose(d, _hand_dav2(model, image, size), atol=1e-5)
    # the folder is also a spec, as `python -m amodal build --depth FOLDER` promises
    assert isinstance(load_estimator(str(folder)), DAV2Depth)


def test_dav2_estimator_runs_a_bfloat16_model(tiny_dav2_folder):
    model, folder = tiny_dav2_folder
    estimator = DAV2Depth(folder, input_size=28)
    estimator.model.to(torch.bfloat16)
    image = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    (d,) = estimator.predict([image])
    assert d.dtype == np.float32 and d.shape == (30, 40)
    reference = _hand_dav2(model, image, (28, 42))
    # bfloat16 keeps 8 significant bits, and min-max normalisation magnifies the rounding of
    # an output whose range is small next to its level (here); it must still follow float32
    assert np.abs(d - reference).mean() < 0.03 and np.corrcoef(d.ravel(), reference.ravel())[0, 1] > 0.98


def test_a_dav2_estimator_by_hub_id_reads_the_cache(hub_cache, tmp_path):
    from hub_testdata import add_to_cache, folder_files

    torch.manual_seed(0)
    dav2 = DepthAnythingV2(TINY)
    with torch.no_grad():
        dav2.head.scratch.output_conv2[2].bias.fill_(1.0)  # a random ReLU head outputs zeros
    dav2.save_pretrained(tmp_path / "dav2")
    add_to_cache(hub_cache, "someone/tiny-dav2", folder_files(tmp_path / "dav2"))
    image = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for spec in ("someone/tiny-dav2", "dav2:someone/tiny-dav2"):
        estimator = load_estimator(spec)
        assert isinstance(estimator, DAV2Depth) and estimator.name == "dav2:someone/tiny-dav2"
        np.testing.assert_array_equal(estimator.predict([image])[0], DAV2Depth(tmp_path / "dav2").predict([image])[0])
    with pytest.raises(FileNotFoundError, match="hf download someone/missing model.safetensors"):
        load_estimator("someone/missing")


def test_only_toy_estimators_carry_a_note_and_it_says_how_to_get_real_depth():
    from amodal.adiw.depth import OracleDepth, RowPriorDepth, toy_depth_note

    note = toy_depth_note(RowPriorDepth())
    assert note.startswith("D_o: toy row prior") and "depth-anything/Depth-Anything-V2-Large" in note
    assert toy_depth_note(OracleDepth()) is None
