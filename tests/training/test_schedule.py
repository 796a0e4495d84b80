"""The IterExponential schedule against values worked out by hand."""
import math

import pytest

from amodal.training.schedule import lr_factor


def test_warmup_is_linear_from_zero():
    assert lr_factor(0, 100, 50_000, 0.01) == 0.0
    assert lr_factor(25, 100, 50_000, 0.01) == 0.25
    assert lr_factor(99, 100, 50_000, 0.01) == pytest.approx(0.99)


def test_decay_hits_one_half_way_marks_and_final_ratio():
    # T − w = 49 900 steps from 1 to 0.01: halfway the factor is sqrt(0.01) = 0.1
    assert lr_factor(100, 100, 50_000, 0.01) == 1.0
    assert lr_factor(100 + 24_950, 100, 50_000, 0.01) == pytest.approx(0.1, rel=1e-12)
    assert lr_factor(100 + 49_900 // 4, 100, 50_000, 0.01) == pytest.approx(0.01 ** 0.25, rel=1e-12)
    assert lr_factor(49_999, 100, 50_000, 0.01) == pytest.approx(0.01 * 0.01 ** (-1 / 49_900), rel=1e-12)
    assert lr_factor(50_000, 100, 50_000, 0.01) == 0.01
    assert lr_factor(60_000, 100, 50_000, 0.01) == 0.01  # Amodal-DAV2 trains on to 60k at the floor


def test_no_warmup_starts_at_one():
    assert lr_factor(0, 0, 10, 0.5) == 1.0
    assert lr_factor(5, 0, 10, 0.5) == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize("args", [(-1, 0, 10, 0.5), (0, 10, 10, 0.5), (0, 0, 10, 0.0), (0, 0, 10, 1.5)])
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        lr_factor(*args)
