"""amodal.models.checks: one check of the guidance maps, at the API boundary."""
import pytest
import torch

from amodal.models.checks import check_guidance, check_image


def _maps(b=2, h=6, w=8):
    image = torch.rand(b, 3, h, w)
    mask = torch.zeros(b, 1, h, w)
    mask[:, :, 1:4, 2:6] = 1
    return image, mask, torch.rand(b, 1, h, w), mask.clone()


def test_valid_inputs_pass_bool_masks_too():
    image, mask, depth, visible = _maps()
    check_guidance(image, mask, depth, visible)
    check_guidance(image, mask > 0, depth, visible > 0)


@pytest.mark.parametrize("name", ["amodal_mask", "observed_depth", "visible_mask"])
def test_each_map_is_named_in_its_errors(name):
    image, mask, depth, visible = _maps()
    args = {"amodal_mask": mask, "observed_depth": depth, "visible_mask": visible}
    bad = dict(args, **{name: args[name][:, :, :-1]})
    with pytest.raises(ValueError, match=f"{name} must have shape \\(2, 1, 6, 8\\)"):
        check_guidance(image, **bad)
    nan = args[name].clone()
    nan[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=f"{name} holds NaN or inf \\(1 values\\)"):
        check_guidance(image, **dict(args, **{name: nan}))
    high = args[name].clone()
    high[0, 0, 5, 7] = 1.5
    with pytest.raises(ValueError, match=rf"{name} must lie in \[0, 1\], got \[[-.e0-9]+, 1.5\]"):
        check_guidance(image, **dict(args, **{name: high}))


def test_empty_amodal_mask_is_counted():
    image, mask, depth, _ = _maps(b=3)
    mask[1] = 0
    with pytest.raises(ValueError, match="empty for 1 of 3 samples"):
        check_guidance(image, mask, depth)


def test_image_must_be_rgb_batch():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        check_image(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="torch.Tensor"):
        check_image([[0.0]])


def test_one_device_transfer_for_all_maps(monkeypatch):
    """The value checks read back once, not once per map and statistic."""
    calls = []
    original = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "item", lambda self: calls.append("item") or pytest.fail("item() syncs"))
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: calls.append("tolist") or original(self))
    check_guidance(*_maps())
    assert calls == ["tolist"]
