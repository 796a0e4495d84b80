"""amodal.training.setup: the recipe's network, objective and trainable parameters; Adam and its schedule."""
import pytest
import torch

from amodal.data.items import training_data
from amodal.training.recipes import get_recipe, parse_overrides
from amodal.training.setup import build_model, make_optimiser
from amodal.training.schedule import lr_factor


def test_model_and_data_errors(tmp_path):
    recipe = get_recipe("amodal-dav2-s-paper")
    with pytest.raises(ValueError, match=r"--init depth_anything_v2_vits.pth \(or its hub id "
                                         r"depth-anything/Depth-Anything-V2-Small or depth-anything/Depth-Anything-V2-Small-hf\)"):
        build_model(recipe, None)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        training_data(str(tmp_path / "none"), recipe)
    with pytest.raises(FileNotFoundError, match="neither ADIW shards"):
        training_data(str(tmp_path), recipe)
    with pytest.raises(FileNotFoundError, match="not found"):
        build_model(recipe, str(tmp_path / "missing.pth"))
    assert type(training_data("synth", recipe)).__name__ == "SynthStream"
    with pytest.raises(ValueError, match="--init depthfm-v1.ckpt with --vae"):
        build_model(get_recipe("amodal-depthfm-paper"), None)


def test_depthfm_model_trains_its_unet_only():
    module, objective, parameters = build_model(get_recipe("amodal-depthfm-paper"), "none")
    unet = {id(p) for p in module.model.unet.parameters()}
    assert {id(p) for p in parameters} == unet
    assert not any(p.requires_grad for p in module.model.autoencoder.parameters())


def test_bend_data_and_the_tiny_model_choice():
    recipe = get_recipe("amodal-depthfm-tiny-synth")
    data = training_data("bend", recipe)
    assert type(data).__name__ == "BendStream" and data[0]["image"].shape == (3, 32, 32) and data.seed == recipe.seed
    module, objective, _ = build_model(recipe, "none")
    assert type(module.model.autoencoder).__name__ == "SpaceToDepthAutoencoder"
    # the recipe's hidden_loss_weight reaches the loss: weighting the hidden pixels changes it
    weighted, _, _ = build_model(get_recipe("amodal-depthfm-tiny-synth", hidden_loss_weight=3.0), "none")
    assert (module.hidden_weight, weighted.hidden_weight) == (0.0, 3.0)
    batch = {k: v[None] if torch.is_tensor(v) else v for k, v in data[0].items()}
    losses = []
    for m in (module, weighted):
        torch.manual_seed(0)
        losses.append(objective(m, batch).item())
    assert losses[0] != pytest.approx(losses[1], rel=1e-4)
    # the paper recipe with --init none still builds the default tiny model, as before
    module, _, _ = build_model(get_recipe("amodal-depthfm-paper"), "none")
    assert type(module.model.autoencoder).__name__ == "PixelAutoencoder" and module.model.noising_step == 400
    with pytest.raises(ValueError, match="unknown tiny_model 'huge'"):
        build_model(get_recipe("amodal-depthfm-tiny-synth", tiny_model="huge"), "none")
    assert parse_overrides(["tiny_model=pooled-8", "noising_step=120"]) == {"tiny_model": "pooled-8", "noising_step": 120}
    assert parse_overrides(["tiny_model=none"]) == {"tiny_model": None}


def test_optimiser_follows_the_schedule():
    recipe = get_recipe("amodal-dav2-tiny-synth", warmup_steps=2, decay_steps=6, final_ratio=0.1, lr=1e-3)
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer, scheduler = make_optimiser([weight], recipe)
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        weight.grad = torch.ones(3)
        optimizer.step()
        scheduler.step()
    # warm-up from 0, then exponential decay to 10 % at step 6, flat after (closed form of the schedule)
    expected = [0.0, 0.5e-3, 1e-3] + [1e-3 * 0.1 ** ((k - 2) / 4) for k in range(3, 7)] + [1e-4]
    assert rates == pytest.approx(expected, rel=1e-9)
    assert rates == pytest.approx([1e-3 * lr_factor(k, 2, 6, 0.1) for k in range(8)], rel=1e-12)


def test_init_from_a_transformers_folder(tmp_path):
    """--init takes a transformers DepthAnythingForDepthEstimation folder: the network starts from its weights."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    backbone = {"model_type": "dinov2", "hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 4,
                "image_size": 70, "out_indices": [1, 2, 3, 4]}
    torch.manual_seed(0)
    theirs = DepthAnythingForDepthEstimation(DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, fusion_hidden_size=16, neck_hidden_sizes=[8, 16, 32, 32]))
    theirs.save_pretrained(tmp_path)
    module, _, parameters = build_model(get_recipe("amodal-dav2-s-paper", size="tiny"), str(tmp_path))
    assert torch.equal(module.encoder.blocks[3].mlp.fc2.weight, theirs.backbone.encoder.layer[3].mlp.fc2.weight)
    assert torch.equal(module.head.scratch.layer1_rn.weight, theirs.neck.convs[0].weight)
    assert not module.encoder.patch_embed_guidance.proj.weight.any()  # the guidance starts at zero
