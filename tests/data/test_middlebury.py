"""The Middlebury yardstick: real disparity behind pasted occluders, in D_o's frame."""
import numpy as np

from amodal.data.middlebury import middlebury_items, motorcycle


def test_scene_and_items():
    scene = motorcycle(56)
    assert scene["image"].shape == (56, 56, 3) and scene["target"].any() and not scene["target"].all()
    assert np.isfinite(scene["disparity"]).all() and 0.8 < scene["measured"].mean() < 1
    items = middlebury_items(3, size=56, seed=1)
    assert [it["bucket"] for it in items] == ["easy", "mid", "hard"]
    for it in items:
        amodal, visible = it["amodal_mask"][0].numpy() > 0.5, it["visible_mask"][0].numpy() > 0.5
        hidden = amodal & ~visible
        observed, target = it["observed_depth"][0].numpy(), it["target_depth"][0].numpy()
        assert hidden.any() and observed.min() == 0 and observed.max() == 1
        # the occluder stands in front: over the hidden part D_o is nearer than the truth
        assert (observed[hidden] > target[hidden]).all()
        np.testing.assert_allclose(observed[visible], target[visible])  # seen parts agree
        assert (it["given_mask"] >= amodal).all()  # scored ⊂ given: unmeasured hidden pixels left out


def test_every_target_lies_in_the_unit_range_at_a_larger_side_too():
    # at 224² an occluder can hide the photo's farthest pixels while the motorcycle's frame shows
    # farther background through its holes: the normalisation must span the hidden truth too
    for item in middlebury_items(60, 224):
        assert 0.0 <= float(item["target_depth"].min()) and float(item["target_depth"].max()) <= 1.0
        assert 0.0 <= float(item["observed_depth"].min()) and float(item["observed_depth"].max()) <= 1.0
