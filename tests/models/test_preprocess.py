"""Preprocessing modes: the paper's squash equals torchvision's NEAREST_EXACT resize; keep-aspect keeps the aspect."""
import pytest
import torch
from torchvision.transforms import InterpolationMode, Resize

from amodal.models.preprocess import keep_aspect_shape, resample


def _rasters(h=30, w=45):
    g = torch.Generator().manual_seed(0)
    amodal = torch.zeros(1, h, w)
    amodal[:, 5:25, 10:40] = 1
    visible = amodal.clone()
    visible[:, :, 25:] = 0
    return {"image": torch.rand(3, h, w, generator=g), "amodal_mask": amodal, "visible_mask": visible,
            "observed_depth": torch.rand(1, h, w, generator=g), "id": "x"}


def test_paper_mode_is_the_official_loaders_resize():
    rasters = _rasters()
    out = resample(rasters, 14, "paper")
    official = Resize(size=(14, 14), interpolation=InterpolationMode.NEAREST_EXACT)
    for key in ("image", "amodal_mask", "visible_mask", "observed_depth"):
        assert torch.equal(out[key], official(rasters[key])), key
    assert out["id"] == "x"


def test_paper_mode_picks_pixels_by_hand():
    # 4 → 2 with nearest-exact samples the centres 1.0 and 3.0 → source pixels 1 and 3
    row = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]]).expand(1, 4, 4)
    assert resample({"observed_depth": row}, 2)["observed_depth"][0].tolist() == [[1.0, 3.0], [1.0, 3.0]]


def test_keep_aspect_scales_short_side_and_crops_centre():
    rasters = _rasters(30, 45)
    assert keep_aspect_shape(30, 45, 20) == (20, 30)
    full = resample(rasters, 20, "keep-aspect", crop=False)
    assert full["image"].shape == (3, 20, 30) and full["amodal_mask"].shape == (1, 20, 30)
    square = resample(rasters, 20, "keep-aspect")
    assert square["image"].shape == (3, 20, 20)
    assert torch.equal(square["image"], full["image"][:, :, 5:25])
    # a constant image stays constant under antialiased bilinear
    const = resample({"image": torch.full((3, 30, 45), 0.25)}, 20, "keep-aspect")["image"]
    torch.testing.assert_close(const, torch.full((3, 20, 20), 0.25))


@pytest.mark.parametrize("mode", ["paper", "keep-aspect"])
def test_masks_stay_binary_and_nested(mode):
    out = resample(_rasters(), 17, mode)
    for key in ("amodal_mask", "visible_mask"):
        assert set(out[key].unique().tolist()) <= {0.0, 1.0}
    assert (out["visible_mask"] <= out["amodal_mask"]).all()


def test_bad_mode_and_size():
    with pytest.raises(ValueError, match="mode must be one of"):
        resample(_rasters(), 14, "bilinear")
    with pytest.raises(ValueError, match="size"):
        resample(_rasters(), 0)
