"""The toy world of notebook 04: its hidden part bends either way, and the image does not say which."""
import torch

from amodal.models.depthfm import tiny_amodal_depthfm
from amodal.toy_occlusion import ambiguous_occlusion_batch, train_toy


def test_toy_scenes_hide_the_bend_behind_the_bar():
    data = ambiguous_occlusion_batch(6, 32, torch.Generator().manual_seed(0))
    hidden = (data["amodal_mask"] > 0) & (data["visible_mask"] == 0)
    assert hidden.flatten(1).any(1).all()
    # outside the hidden part the target is what is observed; inside it bends by ±slope·u
    outside = ~hidden
    assert torch.equal(data["target_depth"][outside], data["observed_depth"][outside])
    straight = ambiguous_occlusion_batch(6, 32, torch.Generator().manual_seed(0), slope=0.0)["target_depth"]
    diff = data["target_depth"] - straight
    assert torch.equal(diff[~hidden], torch.zeros_like(diff[~hidden]))
    for b in range(6):
        bent = diff[b][hidden[b]]
        assert (torch.sign(bent[bent.abs() > 1e-6]) == data["bend"][b]).all() and bent.abs().max() > 0.2
    # the image is the same for both bends: nothing visible tells them apart
    same = ambiguous_occlusion_batch(6, 32, torch.Generator().manual_seed(0), slope=-0.3)
    assert torch.equal(same["image"], data["image"])


def test_toy_training_builds_its_data_on_the_models_device(monkeypatch):
    # a model on `meta` stands for one on a GPU: anything left on the CPU would show
    model = tiny_amodal_depthfm().to("meta")
    seen = []

    def loss(image, target_depth, *, amodal_mask, observed_depth, generator=None):
        seen.append({x.device.type for x in (image, target_depth, amodal_mask, observed_depth)})
        return torch.zeros((), requires_grad=True)

    monkeypatch.setattr(model, "training_loss", loss)
    assert train_toy(model, steps=2, batch=2, size=16) == [0.0, 0.0]
    assert seen == [{"meta"}, {"meta"}]
    data = ambiguous_occlusion_batch(2, 16, torch.Generator().manual_seed(0), device="meta")
    assert {v.device.type for v in data.values()} == {"meta"} and data["image"].shape == (2, 3, 16, 16)
