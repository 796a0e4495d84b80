"""Tests for amodal.adiw.synthetic and amodal.adiw.quality: exact depth gives exact labels."""
from __future__ import annotations

import numpy as np
import pytest

from amodal.adiw.quality import label_quality, quality_table
from amodal.adiw.synthetic import synth_occlusion, synth_sample
from amodal.adiw.composite import BUCKET_RANGES
from amodal.adiw.depth import OracleDepth
from amodal.scenes.synth import disparity_range


@pytest.mark.parametrize("bucket", list(BUCKET_RANGES))
def test_synthetic_occlusion_in_range(bucket):
    low, high = BUCKET_RANGES[bucket]
    occ = synth_occlusion(3, 64, (low, high))
    assert low < occ.visible_ratio <= high
    assert np.array_equal(occ.visible_mask, occ.amodal_mask & ~occ.occluder_mask)
    # the target is complete in the background and its full depth is behind the occluder
    assert np.array_equal(occ.background.visible_masks[occ.target], occ.amodal_mask)
    hidden = occ.amodal_mask & ~occ.visible_mask
    assert (occ.composite.depth[hidden] < occ.background.depth[hidden]).all()
    # exact target = the target's own disparity in the composite's frame (independent formula)
    lo, hi = disparity_range(occ.composite.depth)
    z = occ.background.amodal_depth[occ.target][hidden]
    assert np.allclose(occ.exact_target[hidden], (1 / z - lo) / (hi - lo))
    # seeded: the same seed gives the same occlusion
    again = synth_occlusion(3, 64, (low, high))
    assert np.array_equal(again.composite.image, occ.composite.image) and np.array_equal(again.exact_target, occ.exact_target)


def test_exact_depth_gives_exact_labels_on_both_fits():
    occ = synth_occlusion(5, 64)
    hidden = occ.amodal_mask & ~occ.visible_mask
    for fit in ("visible", "ring"):
        sample = synth_sample(occ, OracleDepth(), fit=fit)
        assert np.abs(sample.target_depth[hidden] - occ.exact_target[hidden]).max() < 1e-5


def test_label_quality_table():
    result = label_quality(n=6, size=64, seed=1)
    labels = result["labels"]
    assert labels[("exact", "visible")]["raw"]["overall"]["rmse"] < 1e-5
    assert labels[("exact", "ring")]["raw"]["overall"]["count"] == 6
    noisy = labels[("affine+noise", "visible")]["raw"]["overall"]["rmse"]
    assert 1e-3 < noisy < 0.5
    # balanced buckets: 6 samples cycle easy, mid, hard
    assert [labels[("exact", "visible")]["raw"][b]["count"] for b in ("easy", "mid", "hard")] == [2, 2, 2]
    table = quality_table(result)
    assert "gamma+noise" in table and "D_o" in table
