"""amodal.align against numpy.linalg.lstsq and hand-made cases."""
import numpy as np
import pytest
import torch

from amodal.align import _fit, _flat_batches, align, scale_shift


def lstsq_reference(pred, target, mask):
    """(s, t) from numpy.linalg.lstsq on the masked pixels, float64."""
    p = np.asarray(pred, np.float64)[np.asarray(mask, bool)]
    g = np.asarray(target, np.float64)[np.asarray(mask, bool)]
    design = np.stack([p, np.ones_like(p)], axis=1)
    (s, t), *_ = np.linalg.lstsq(design, g, rcond=None)
    return s, t


def random_case(rng, batch=4, size=(37, 53)):
    pred = rng.random((batch, 1, *size)).astype(np.float32)
    target = (rng.normal(size=(batch, 1, *size)) * 0.3 + 0.7 * pred).astype(np.float32)
    mask = rng.random((batch, 1, *size)) < rng.uniform(0.05, 0.9, size=(batch, 1, 1, 1))
    return pred, target, mask


@pytest.mark.parametrize("seed", range(5))
def test_equals_lstsq_on_random_masked_batches(seed):
    rng = np.random.default_rng(seed)
    pred, target, mask = random_case(rng)
    scale_np, shift_np = scale_shift(pred, target, mask)
    scale_t, shift_t = scale_shift(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(mask))
    assert scale_np.shape == (4,) and scale_t.shape == (4,)
    for b in range(4):
        s_ref, t_ref = lstsq_reference(pred[b], target[b], mask[b])
        np.testing.assert_allclose([scale_np[b], shift_np[b]], [s_ref, t_ref], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose([float(scale_t[b]), float(shift_t[b])], [s_ref, t_ref], rtol=1e-6, atol=1e-9)


def test_recovers_known_scale_and_shift_exactly():
    rng = np.random.default_rng(1)
    pred = rng.random((64, 48))
    mask = rng.random((64, 48)) < 0.3
    target = -2.5 * pred + 0.75
    target[~mask] = np.nan  # values outside the mask must not matter
    pred[~mask] = np.inf
    pred[0, 0], mask[0, 0] = np.nan, False
    s, t = scale_shift(pred, target, mask)
    assert s == pytest.approx(-2.5, abs=1e-12) and t == pytest.approx(0.75, abs=1e-12)
    aligned = align(pred, target, mask)
    np.testing.assert_allclose(aligned[mask], target[mask], atol=1e-12)
    s_t, t_t = scale_shift(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(mask))
    assert (s_t, t_t) == pytest.approx((-2.5, 0.75), abs=1e-12)


def test_hand_made_two_point_fit():
    # Two points define the line: pred 1 -> 3, pred 2 -> 5, so s = 2, t = 1.
    pred = np.array([[1.0, 2.0, 9.0]])
    target = np.array([[3.0, 5.0, -1.0]])
    mask = np.array([[True, True, False]])
    assert scale_shift(pred, target, mask) == pytest.approx((2.0, 1.0))
    np.testing.assert_allclose(align(pred, target, mask), [[3.0, 5.0, 19.0]])


def test_align_keeps_type_dtype_and_shape():
    rng = np.random.default_rng(2)
    pred, target, mask = random_case(rng, batch=3)
    out_np = align(pred, target, mask)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float32 and out_np.shape == pred.shape
    pred_t = torch.from_numpy(pred)
    out_t = align(pred_t, torch.from_numpy(target), torch.from_numpy(mask))
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32 and out_t.shape == pred_t.shape
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-6, atol=1e-6)
    # Each sample gets its own fit: aligning sample 1 alone gives the same answer.
    alone = align(pred[1, 0], target[1, 0], mask[1, 0])
    np.testing.assert_allclose(alone, out_np[1, 0], rtol=1e-6, atol=1e-6)


def test_single_map_shapes_return_floats():
    rng = np.random.default_rng(3)
    pred, target, mask = random_case(rng, batch=1)
    s2, t2 = scale_shift(pred[0, 0], target[0, 0], mask[0, 0])
    s3, t3 = scale_shift(pred[0], target[0], mask[0])
    assert isinstance(s2, float) and isinstance(t3, float)
    assert (s2, t2) == pytest.approx((s3, t3))


def test_accurate_in_float32_large_offsets():
    # Large common offsets make a naive sum-of-squares formula cancel catastrophically.
    rng = np.random.default_rng(4)
    base = rng.random((256, 256))
    pred = (1000.0 + base).astype(np.float32)
    target = 3.0 * pred.astype(np.float64) - 2000.0
    mask = np.ones_like(base, bool)
    s, t = scale_shift(pred, target, mask)
    s_ref, t_ref = lstsq_reference(pred, target, mask)
    assert s == pytest.approx(s_ref, rel=1e-6) and t == pytest.approx(t_ref, rel=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_errors_name_the_sample(backend):
    rng = np.random.default_rng(5)
    pred, target, mask = random_case(rng, batch=3)
    cases = []
    m = mask.copy()
    m[1] = False
    m[1, 0, 0, 0] = True
    cases.append((pred, target, m, "sample 1: the mask has 1 valid pixels"))
    p = pred.copy()
    p[2][mask[2]] = 0.5
    cases.append((p, target, mask, "sample 2: the prediction is constant"))
    g = target.copy()
    idx = np.argwhere(mask[0, 0])[0]
    g[0, 0, idx[0], idx[1]] = np.nan
    cases.append((pred, g, mask, "sample 0: NaN or inf"))
    p = pred.copy()
    p[2, 0][mask[2, 0]] = np.inf
    cases.append((p, target, mask, "sample 2: NaN or inf"))
    for p, g, m, message in cases:
        if backend == "torch":
            p, g, m = torch.from_numpy(p), torch.from_numpy(g), torch.from_numpy(m)
        with pytest.raises(ValueError, match=message):
            scale_shift(p, g, m)


def test_empty_mask_and_shape_errors():
    pred = np.zeros((4, 4))
    with pytest.raises(ValueError, match="0 valid pixels"):
        scale_shift(pred + np.arange(4), pred, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="same shape"):
        scale_shift(pred, np.zeros((4, 5)), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        scale_shift(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4)), np.ones((2, 3, 4, 4)))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_general_path_used_on_gpu_equals_lstsq(backend):
    # The closed form in plain array operations (the path for CUDA tensors and for
    # reporting errors) must agree with lstsq as the fused CPU kernel does.
    rng = np.random.default_rng(6)
    pred, target, mask = random_case(rng, batch=3)
    inputs = (pred, target, mask) if backend == "numpy" else tuple(map(torch.from_numpy, (pred, target, mask)))
    scale, shift = _fit(*_flat_batches(*inputs))
    for b in range(3):
        s_ref, t_ref = lstsq_reference(pred[b], target[b], mask[b])
        np.testing.assert_allclose([float(scale[b]), float(shift[b])], [s_ref, t_ref], rtol=1e-9)


def test_half_precision_and_integer_masks():
    rng = np.random.default_rng(7)
    pred, target, mask = random_case(rng, batch=2)
    s_ref, t_ref = scale_shift(pred.astype(np.float16).astype(np.float64), target, mask)
    s16, t16 = scale_shift(torch.from_numpy(pred).half(), torch.from_numpy(target), torch.from_numpy(mask).to(torch.uint8))
    np.testing.assert_allclose(s16.numpy(), s_ref, rtol=1e-9)
    np.testing.assert_allclose(t16.numpy(), t_ref, rtol=1e-9)
