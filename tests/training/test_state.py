"""Training checkpoints: generator states survive a file read with weights_only=True, recipes are
compared field by field, and a hostile file is refused without running."""
import random
from dataclasses import asdict

import numpy as np
import pytest
import torch

from amodal.training.recipes import get_recipe
from amodal.training.state import (CHECKPOINT_NAME, describe_differences, read_training_checkpoint, recipe_differences,
                                   rng_state, set_rng_state)
from pickle_testdata import write_hostile_checkpoint


def _draws():
    # np.random.randn caches the second of each Box-Muller pair: has_gauss and the cached value are state too
    return random.random(), np.random.randn(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_generator_states_come_back_through_a_file_read_weights_only(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leave a cached gaussian behind
    torch.save(rng_state(), tmp_path / "rng.pt")
    expected = _draws()
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert _draws() == expected


def test_numpy_state_is_plain_values():
    kind, key, position, has_gauss, gaussian = rng_state()["numpy"]
    assert kind == "MT19937" and len(key) == 624 and all(type(k) is int for k in key)
    assert key == np.random.get_state()[1].tolist() and position == np.random.get_state()[2]


def test_recipe_differences_name_each_field():
    recipe = get_recipe("amodal-dav2-s-paper")
    stored = {**asdict(recipe), "lr": 1.0, "max_steps": 3}
    assert recipe_differences(stored, recipe) == {"lr": (1.0, recipe.lr), "max_steps": (3, recipe.max_steps)}
    assert recipe_differences(stored, recipe, ignore=("max_steps",)) == {"lr": (1.0, recipe.lr)}
    assert describe_differences({"lr": (1.0, 2.0), "name": ("a", "b")}) == "lr: 1.0 → 2.0, name: 'a' → 'b'"
    older = {k: v for k, v in asdict(recipe).items() if k != "tiny_model"}  # written before the field existed
    assert recipe_differences(older, recipe) == {}


def test_a_hostile_checkpoint_is_refused_and_runs_nothing(tmp_path):
    write_hostile_checkpoint(tmp_path / CHECKPOINT_NAME, tmp_path / "ran")
    with pytest.raises(ValueError, match=r"checkpoint.pt was not loaded: .*posix.mkdir"):
        read_training_checkpoint(tmp_path)
    assert not (tmp_path / "ran").exists()


def test_a_file_of_plain_values_that_is_no_checkpoint_names_what_is_missing(tmp_path):
    torch.save({"step": 3, "model": {}}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ValueError, match="not a training checkpoint .missing recipe, optimizer, scheduler, rng"):
        read_training_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        read_training_checkpoint(tmp_path / "empty")
