"""amodal.data.mask_items: completer training crops, synthetic and real items with their true whole masks."""
import numpy as np
import pytest
import torch

from amodal.adiw.composite import BUCKET_RANGES
from amodal.adiw.sa1b import load_masks
from amodal.data.items import training_data
from amodal.data.mask_items import MaskCrops, pasted_object_items, sample_objects, synth_mask_items
from amodal.data.streams import SynthStream
from amodal.models.mask_completer import MaskCompleterConfig
from amodal.training.recipes import get_recipe
from amodal.utils.paths import data_samples_dir

SMALL = MaskCompleterConfig(width=4, levels=2, input_size=16, groups=2)


def _item(size=32):
    image = torch.rand(3, size, size)
    amodal = torch.zeros(1, size, size)
    amodal[0, 8:16, 8:24] = 1
    visible = amodal.clone()
    visible[0, :, 16:] = 0  # the right half hidden
    return {"image": image, "amodal_mask": amodal, "visible_mask": visible, "bucket": "mid", "id": "x"}


def test_crops_hold_the_box_around_the_visible_mask():
    item = _item()
    crop = MaskCrops([item], MaskCompleterConfig(width=4, levels=2, input_size=16, groups=2, margin=0.5))[0]
    # M_vis: rows 8…15, columns 8…15 → side 16, box (4, 4, 16): no resampling at input_size 16
    np.testing.assert_array_equal(crop["visible_mask"][0].numpy(), item["visible_mask"][0, 4:20, 4:20].numpy())
    np.testing.assert_array_equal(crop["amodal_mask"][0].numpy(), item["amodal_mask"][0, 4:20, 4:20].numpy())
    np.testing.assert_array_equal(crop["inputs"][3].numpy(), 2 * item["visible_mask"][0, 4:20, 4:20].numpy() - 1)
    assert crop["inputs"].shape == (5, 16, 16) and (crop["bucket"], crop["id"]) == ("mid", "x")
    # resized: masks become fractions in [0, 1], the hidden part stays where it was
    small = MaskCrops([item], MaskCompleterConfig(width=4, levels=1, input_size=8, groups=2))[0]
    assert small["amodal_mask"].shape == (1, 8, 8) and 0 <= small["amodal_mask"].min() and small["amodal_mask"].max() <= 1
    assert (small["amodal_mask"] >= small["visible_mask"] - 1e-6).all()


def test_a_pool_keeps_its_crops_and_a_stream_does_not():
    items = [_item(), _item()]
    pool = MaskCrops(items, SMALL, count=2)
    assert len(pool) == 2 and pool[1] is pool[1]
    with pytest.raises(IndexError):
        pool[2]
    with pytest.raises(ValueError, match="count ≥ 1"):
        MaskCrops(items, SMALL, count=0)
    stream = MaskCrops(SynthStream(0, 48), SMALL)
    with pytest.raises(TypeError):
        len(stream)
    assert stream[0]["inputs"].shape == (5, 16, 16)


def test_training_data_gives_the_completer_crops_of_scenes_at_their_own_size():
    recipe = get_recipe("amodal-mask-completer-tiny", synth_pool=2, scene_size=48)
    data = training_data("synth", recipe)
    assert isinstance(data, MaskCrops) and len(data) == 2 and data.items.size == 48
    assert data[0]["inputs"].shape == (5, 64, 64) and data[0]["id"].startswith("synth-rich-photo-textures-2024-")
    with pytest.raises(ValueError, match="--data bend holds no objects"):
        training_data("bend", recipe)


def test_synthetic_items_carry_exact_nested_masks():
    items = synth_mask_items(3, seed=7, size=48, shapes="rich")
    stream = SynthStream(7, 48, shapes="rich")
    assert [i["bucket"] for i in items] == ["easy", "mid", "hard"]
    for k, item in enumerate(items):
        np.testing.assert_array_equal(item["amodal_mask"], stream[k]["amodal_mask"][0].numpy() > 0.5)
        assert item["image"].dtype == np.uint8 and item["image"].shape == (48, 48, 3)
        assert (item["visible_mask"] <= item["amodal_mask"]).all() and (item["amodal_mask"] & ~item["visible_mask"]).any()
        low, high = BUCKET_RANGES[item["bucket"]]
        assert low < item["visible_ratio"] <= high


def test_sample_objects_are_the_complete_ones_of_the_photos():
    objects = sample_objects()
    # data_samples/README: off the border, in one part and solid
    assert {o["id"] for o in objects} == {1000017, 1000027, 2000007, 2000017, 2000027, 3000007, 4000007, 5000007,
                                          5000037, 5000047}


def test_pasted_items_keep_the_objects_sa1b_mask_as_truth():
    items = pasted_object_items(6, seed=3)
    masks = {}
    for path in (data_samples_dir() / "sa1b").glob("*.json"):
        for annotation, mask in load_masks(path)[1]:
            masks[(path.stem, annotation["id"])] = mask
    assert [i["bucket"] for i in items] == ["easy", "mid", "hard"] * 2
    for item in items:
        photo, object_id, _ = item["id"].rsplit("-", 2)
        np.testing.assert_array_equal(item["amodal_mask"], masks[(photo, int(object_id))])
        np.testing.assert_array_equal(item["visible_mask"], item["amodal_mask"] & ~item["occluder_mask"])
        low, high = BUCKET_RANGES[item["bucket"]]
        assert low < item["visible_mask"].sum() / item["amodal_mask"].sum() <= high
    again = pasted_object_items(6, seed=3)  # seeded: the same occluders in the same places
    assert all((a["occluder_mask"] == b["occluder_mask"]).all() for a, b in zip(items, again))
    with pytest.raises(ValueError, match="count must be ≥ 1"):
        pasted_object_items(0)
