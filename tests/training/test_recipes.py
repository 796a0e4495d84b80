"""The paper recipes hold the official configs' values (read from the official repository)."""
import pytest

from amodal.training.recipes import RECIPES, get_recipe, parse_overrides


@pytest.mark.parametrize("size", ["s", "b", "l"])
def test_amodal_dav2_paper_recipe_matches_official_config(size):
    r = get_recipe(f"amodal-dav2-{size}-paper")
    assert (r.model, r.size, r.init, r.trainable) == ("amodal-dav2", size, "dav2", "all")
    assert r.lr == 3.0e-05  # `lr: 3.0e-05` (not the paper text's 1e-5, which is the ViT-G config's)
    assert (r.warmup_steps, r.decay_steps, r.final_ratio, r.max_steps) == (100, 50_000, 0.01, 60_000)
    assert (r.max_grad_norm, r.batch_size, r.batch_per_device, r.accumulation) == (0.01, 32, 8, 4)
    assert (r.seed, r.flip_p, r.input_size, r.validate_every) == (2024, 0.5, 518, 10_000)
    assert r.loss == "silog" and 1 - r.silog_lambda == pytest.approx(0.15)  # config: `beta: 0.15`
    assert r.loss_region == "object"
    assert r.activation_checkpointing == (size == "l")  # ours: memory only, no number changes


def test_amodal_depthfm_paper_recipe_matches_official_config():
    r = get_recipe("amodal-depthfm-paper")
    assert (r.model, r.init, r.trainable, r.lr) == ("amodal-depthfm", "depthfm", "unet", 3.0e-05)
    assert (r.warmup_steps, r.decay_steps, r.final_ratio, r.max_steps) == (100, 12_000, 0.01, 15_000)
    assert (r.max_grad_norm, r.batch_size, r.batch_per_device, r.accumulation) == (0.01, 128, 8, 16)
    assert (r.seed, r.flip_p, r.input_size, r.validate_every) == (2024, 0.5, 512, 2_500)
    assert (r.loss, r.loss_region, r.noising_step, r.time_grid, r.validation_euler_steps) == ("flow_mse", "object", 400, 400, 4)


def test_names_and_overrides():
    assert all(name == recipe.name for name, recipe in RECIPES.items())
    small = get_recipe("amodal-dav2-s-paper", max_steps=3)
    assert small.max_steps == 3 and RECIPES["amodal-dav2-s-paper"].max_steps == 60_000
    with pytest.raises(ValueError, match="unknown recipe 'dav2'; known recipes: amodal-dav2-b-paper"):
        get_recipe("dav2")
    with pytest.raises(ValueError, match=r"no field\(s\) \['steps'\]"):
        get_recipe("amodal-depthfm-paper", steps=3)


def test_tiny_synth_recipe_is_ours_and_leaves_the_paper_recipes_as_they_were():
    r = get_recipe("amodal-depthfm-tiny-synth")
    assert (r.model, r.size, r.init, r.trainable, r.tiny_model) == ("amodal-depthfm", None, None, "unet", "lossless-16")
    assert (r.input_size, r.batch_size, r.batch_per_device, r.flip_p, r.noising_step) == (32, 16, 16, 0.0, 400)
    assert r.decay_steps == r.max_steps and r.warmup_steps < r.max_steps
    # a field added with a default: every paper recipe keeps it unset
    assert all(RECIPES[name].tiny_model is None for name in RECIPES if name.endswith("-paper"))


def test_overrides_are_typed():
    assert parse_overrides(["max_steps=3", "lr=1e-4", "size=tiny", "time_grid=none"]) == {
        "max_steps": 3, "lr": 1e-4, "size": "tiny", "time_grid": None}
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_overrides(["max_steps"])
    with pytest.raises(ValueError, match="no field 'steps'"):
        parse_overrides(["steps=3"])
    assert parse_overrides(["activation_checkpointing=false"]) == {"activation_checkpointing": False}
    assert parse_overrides(["activation_checkpointing=True"]) == {"activation_checkpointing": True}
    with pytest.raises(ValueError, match="not true or false"):
        parse_overrides(["activation_checkpointing=maybe"])
    with pytest.raises(ValueError, match="'x' is not a int"):
        parse_overrides(["max_steps=x"])


@pytest.mark.parametrize("field, value, rule", [
    ("batch_size", 0, "batch_size must be a whole number ≥ 1"), ("batch_size", -4, "batch_size must be a whole number ≥ 1"),
    ("max_steps", 0, "max_steps must be a whole number ≥ 1"), ("max_steps", -5, "max_steps must be a whole number ≥ 1"),
    ("batch_per_device", 0, "batch_per_device must be a whole number ≥ 1"), ("input_size", 0, "input_size must be"),
    ("lr", 0.0, "lr must be > 0"), ("flip_p", 1.5, r"flip_p must be in \[0, 1\]"), ("final_ratio", 0.0, "final_ratio must be"),
    ("warmup_steps", 2000, "warmup_steps must be a whole number in"), ("batch_size", 10, "a multiple of batch_per_device"),
])
def test_a_recipe_refuses_values_that_train_nothing(field, value, rule):
    with pytest.raises(ValueError, match=rule):
        get_recipe("amodal-dav2-tiny-synth", **{field: value})
