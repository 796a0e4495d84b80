"""The synthetic training streams: exact, seeded, buckets cycled; the toy's scenes, stateless."""
import numpy as np
import pytest
import torch

from amodal.metrics import visible_ratio_bucket
from amodal.scenes.toy_occlusion import ambiguous_occlusion_batch, held_out_seeds, scene_seed
from amodal.data.streams import BendStream, SynthStream


def test_items_are_exact_and_repeatable():
    stream = SynthStream(seed=5, size=56)
    with pytest.raises(TypeError, match="endless"):
        len(stream)
    items = [stream[k] for k in range(3)]
    assert [i["bucket"] for i in items] == ["easy", "mid", "hard"]
    for item in items:
        assert item["image"].shape == (3, 56, 56) and item["image"].dtype == torch.float32
        amodal, visible = item["amodal_mask"] > 0, item["visible_mask"] > 0
        assert bool((visible <= amodal).all())
        ratio = float(visible.sum() / amodal.sum())
        assert visible_ratio_bucket(ratio) == item["bucket"]
        # outside the object's hidden part the target is the observed depth (both exact)
        hidden = amodal & ~visible
        np.testing.assert_allclose(item["target_depth"][~hidden], item["observed_depth"][~hidden], atol=1e-6)
        assert float(item["observed_depth"].min()) == 0.0 and float(item["observed_depth"].max()) == 1.0
    again = SynthStream(seed=5, size=56)[1]
    assert torch.equal(again["target_depth"], items[1]["target_depth"])
    assert not torch.equal(SynthStream(seed=6, size=56)[1]["image"], items[1]["image"])


def test_bad_buckets():
    with pytest.raises(ValueError, match="buckets"):
        SynthStream(0, buckets=("medium",))


def test_pool_is_the_streams_first_items_cached():
    from amodal.data.streams import SynthPool

    pool = SynthPool(seed=3, count=4, size=42)
    stream = SynthStream(seed=3, size=42)
    assert len(pool) == 4
    for k in range(4):
        a, b = pool[k], stream[k]
        assert a["id"] == b["id"] and all(torch.equal(a[key], b[key]) for key in ("image", "target_depth"))
    assert pool[2] is pool[2]  # rendered once
    with pytest.raises(IndexError):
        pool[4]
    with pytest.raises(ValueError, match="count ≥ 1"):
        SynthPool(seed=3, count=0)


def test_items_carry_the_occluder_on_request():
    plain, with_occluder = SynthStream(seed=5, size=56)[2], SynthStream(seed=5, size=56, with_occluder=True)[2]
    assert "occluder_mask" not in plain
    assert torch.equal(plain["target_depth"], with_occluder["target_depth"])
    occluder = with_occluder["occluder_mask"] > 0
    hidden = (with_occluder["amodal_mask"] > 0) & ~(with_occluder["visible_mask"] > 0)
    # the occluder is the only object added to the scene, so it covers every hidden pixel
    assert occluder.shape == (1, 56, 56) and bool(hidden.any()) and bool((hidden <= occluder).all())


def test_bend_stream_items_are_the_toys_scenes_and_repeatable():
    stream = BendStream(seed=3)
    with pytest.raises(TypeError, match="endless"):
        len(stream)
    with pytest.raises(IndexError):
        stream[-1]
    items = [stream[k] for k in range(4)]
    for k, item in enumerate(items):
        # item k is the one scene the generator seeded scene_seed(3, k) draws
        scene = ambiguous_occlusion_batch(1, 32, torch.Generator().manual_seed(scene_seed(3, k)))
        assert all(torch.equal(item[key], scene[key][0]) for key in ("image", "amodal_mask", "visible_mask",
                                                                     "observed_depth", "target_depth"))
        assert item["image"].shape == (3, 32, 32) and item["target_depth"].shape == (1, 32, 32)
        assert item["bend"] == float(scene["bend"][0]) and item["id"] == f"bend-3-{k}"
    # stateless: any order, any new stream object, gives the same item
    again = BendStream(seed=3)
    assert torch.equal(again[2]["target_depth"], items[2]["target_depth"])
    assert not torch.equal(BendStream(seed=4)[2]["image"], items[2]["image"])
    assert {item["bend"] for item in [stream[k] for k in range(20)]} == {-1.0, 1.0}


def test_held_out_scenes_are_not_training_scenes():
    # 64-bit scene seeds: the first 10,000 of a training stream and the held-out ones share none
    held = set(held_out_seeds(48))
    assert len(held) == 48 and not held & {scene_seed(2024, k) for k in range(10_000)}
    assert scene_seed(2024, 5) == scene_seed(2024, 5) != scene_seed(2025, 5)
