"""amodal.data.items: one way to open evaluation items and training data by name."""
import numpy as np
import pytest

from amodal.app.explorer import item_maps
from amodal.data.items import evaluation_items, training_data
from amodal.data.streams import BendStream, SynthPool, SynthStream
from amodal.training.recipes import get_recipe


def test_synth_items_are_the_streams_items():
    items = evaluation_items("synth", 3, 28, seed=5)
    stream = SynthStream(5, 28)
    for k, item in enumerate(items):
        assert item["id"] == stream[k]["id"] and "occluder_mask" not in item
        np.testing.assert_array_equal(item["target_depth"].numpy(), stream[k]["target_depth"].numpy())
    with_occluder = evaluation_items("synth", 1, 28, seed=5, with_occluder=True)[0]
    np.testing.assert_array_equal(with_occluder["image"].numpy(), items[0]["image"].numpy())
    assert with_occluder["occluder_mask"].shape == (1, 28, 28)


def test_named_sources_need_a_positive_count(tmp_path):
    with pytest.raises(ValueError, match="needs a count"):
        evaluation_items("synth")
    with pytest.raises(ValueError, match="count must be ≥ 1"):
        evaluation_items("synth", 0)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        evaluation_items(tmp_path / "missing", 3)
    with pytest.raises(FileNotFoundError, match="neither ADIW shards"):
        evaluation_items(tmp_path, 3)


def test_training_data_by_name():
    recipe = get_recipe("amodal-dav2-tiny-synth")
    assert isinstance(training_data("synth", recipe), SynthPool)
    assert isinstance(training_data("synth", get_recipe("amodal-dav2-tiny-synth", synth_pool=0)), SynthStream)
    assert isinstance(training_data("bend", recipe), BendStream)


def test_shard_items_recover_the_occluder_from_the_source_photo(tmp_path):
    from amodal.adiw.build import build, BuildConfig
    from amodal.adiw.sources import find_sources
    from adiw_testdata import BrightnessDepth, write_sources

    write_sources(tmp_path / "src", 3)
    build(find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b"), tmp_path / "adiw", BrightnessDepth(),
          BuildConfig(samples_per_image=2, seed=0, size=80), progress=False)  # photos resized: the builder's size is read back
    plain = evaluation_items(tmp_path / "adiw", size=None)
    assert plain and "occluder_mask" not in plain[0]
    found = evaluation_items(tmp_path / "adiw", 3, None, photos=tmp_path / "src" / "images")
    assert len(found) == 3
    for item in found:
        maps = item_maps(item)
        # M_vis = M_a ∧ ¬M_occ, so the occluder covers every hidden pixel
        assert maps["hidden"].any() and (maps["hidden"] <= maps["occluder"]).all()
    squashed = evaluation_items(tmp_path / "adiw", 2, 28, photos=tmp_path / "src" / "images")
    assert len(squashed) == 2 and squashed[0]["occluder_mask"].shape == (1, 28, 28)
