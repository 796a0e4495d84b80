"""Tests for amodal.depth: normalisation, the oracle stand-in, the toy prior, DAV2 batching."""
from __future__ import annotations

import numpy as np
import pytest

from amodal.depth import (
    DepthEstimator,
    OracleDepth,
    RowPriorDepth,
    as_float_image,
    load_estimator,
    normalise_disparity,
    smooth_noise,
)


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


def test_dav2_estimator_matches_infer_image(tmp_path):
    amodal_dav2 = pytest.importorskip("amodal.models.amodal_dav2")
    import torch

    from amodal.depth import DAV2Depth

    torch.manual_seed(0)
    model = amodal_dav2.DepthAnythingV2(amodal_dav2.TINY).eval()
    folder = model.save_pretrained(tmp_path / "tiny")
    estimator = DAV2Depth(folder, batch_size=2, input_size=28)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (30, 40, 3), dtype=np.uint8) for _ in range(3)] + [
        rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    ]
    out = estimator.predict(images)
    for image, d in zip(images, out):
        reference = normalise_disparity(model.infer_image(image, input_size=28))
        assert d.shape == image.shape[:2]
        assert np.allclose(d, reference, atol=1e-4)
    # the folder is also a spec, as `python -m amodal build --depth FOLDER` promises
    assert isinstance(load_estimator(str(folder)), DAV2Depth)
