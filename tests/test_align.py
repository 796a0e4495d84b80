"""amodal.align against numpy.linalg.lstsq, a longdouble closed form, hand-made cases and hand-derived gradients."""
import numpy as np
import pytest
import torch

from amodal.align import _centred_moments, _flat_batches, _solve, align, align_shift, scale_shift


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


def test_general_path_used_on_gpu_equals_lstsq():
    # The closed form in torch operations (the path for CUDA tensors, for gradients and
    # under torch.compile) must agree with lstsq as the fused CPU kernel does.
    rng = np.random.default_rng(6)
    pred, target, mask = random_case(rng, batch=3)
    scale, shift, _ = _solve(*_centred_moments(*_flat_batches(*map(torch.from_numpy, (pred, target, mask)))))
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


# ----------------------------------------------------------------------------- accuracy
def longdouble_reference(pred, target, mask):
    """(s, t) of the closed form in np.longdouble (64-bit mantissa on x86), centred sums."""
    p = np.asarray(pred, np.longdouble)[mask]
    g = np.asarray(target, np.longdouble)[mask]
    dp, dg = p - p.mean(), g - g.mean()
    s = (dp * dg).sum() / (dp * dp).sum()
    return s, g.mean() - s * p.mean()


def adversarial_batch(dtype):
    """1 Mpx of 0.1 + U(0, 1e-3) whose first (masked) pixel is far from the mean.

    Three samples: an outlier of 0.9 with an affine target; the same with a target
    equal to the prediction plus noise (shift ≈ 0, the hardest for the shift); an
    outlier of 1000.
    """
    rng = np.random.default_rng(8)
    pred = 0.1 + rng.uniform(0, 1e-3, (3, 1, 1024, 1024))
    pred[0, 0, 0, 0] = pred[1, 0, 0, 0] = 0.9
    pred[2, 0, 0, 0] = 1000.0
    noise = rng.normal(0, 1e-5, pred.shape)
    target = np.stack([-1.5 * pred[0] + 0.4, pred[1] + 10 * noise[1], 2.0 * pred[2] + 0.3]) + noise
    mask = rng.random(pred.shape) < 0.7
    mask[:, 0, 0, 0] = True
    return pred.astype(dtype), target.astype(dtype), mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accurate_to_1e10_when_the_first_pixel_is_far_from_the_mean(dtype):
    pred, target, mask = adversarial_batch(dtype)
    pred_t, target_t, mask_t = map(torch.from_numpy, (pred, target, mask))
    answers = {
        "numpy (kernel)": scale_shift(pred, target, mask),
        "torch (kernel)": scale_shift(pred_t, target_t, mask_t),
        "torch with grad (general path)": scale_shift(pred_t.requires_grad_(), target_t, mask_t),
    }
    for b in range(3):
        s_ref, t_ref = longdouble_reference(pred[b], target[b], mask[b])
        for name, (scale, shift) in answers.items():
            s, t = (np.asarray(v.detach() if isinstance(v, torch.Tensor) else v)[b] for v in (scale, shift))
            assert abs((s - s_ref) / s_ref) <= 1e-10, (name, b)
            assert abs((t - t_ref) / t_ref) <= 1e-10, (name, b)


# ----------------------------------------------------------------------------- gradients
def closed_form_gradients(pred, target, mask):
    """d(scale)/d(pred, target) and d(shift)/d(pred, target) of one map, derived by hand.

    With x̄, ȳ the means on the mask, S = Σ(x − x̄)², s the scale and r = y − s·x − t
    the residual: ∂s/∂y_i = (x_i − x̄)/S, ∂t/∂y_i = 1/n − x̄·∂s/∂y_i,
    ∂s/∂x_i = (r_i − s·(x_i − x̄))/S, ∂t/∂x_i = −s/n − x̄·∂s/∂x_i; zero off the mask.
    """
    x, y = np.asarray(pred, np.float64)[mask], np.asarray(target, np.float64)[mask]
    n, dx = x.size, x - x.mean()
    big_s = (dx * dx).sum()
    s = (dx * (y - y.mean())).sum() / big_s
    t = y.mean() - s * x.mean()
    r = y - s * x - t
    out = {}
    for name, values in {
        "ds_dy": dx / big_s,
        "dt_dy": 1 / n - x.mean() * dx / big_s,
        "ds_dx": (r - s * dx) / big_s,
        "dt_dx": -s / n - x.mean() * (r - s * dx) / big_s,
    }.items():
        full = np.zeros(np.shape(pred))
        full[mask] = values
        out[name] = full
    return out


def test_cpu_gradients_equal_the_hand_derived_closed_form():
    # On the CPU as on a GPU, scale and shift are differentiable functions of both maps.
    rng = np.random.default_rng(9)
    pred, target, mask = random_case(rng, batch=2, size=(9, 11))
    pred_t = torch.from_numpy(pred).requires_grad_()
    target_t = torch.from_numpy(target).requires_grad_()
    scale, shift = scale_shift(pred_t, target_t, torch.from_numpy(mask))
    assert scale.requires_grad and shift.requires_grad
    for name, output in (("s", scale), ("t", shift)):
        grad_pred, grad_target = torch.autograd.grad(output[1], (pred_t, target_t), retain_graph=True)
        expected = closed_form_gradients(pred[1], target[1], mask[1])
        np.testing.assert_allclose(grad_pred[1].numpy(), expected[f"d{name}_dx"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grad_target[1].numpy(), expected[f"d{name}_dy"], rtol=1e-5, atol=1e-6)
        assert not grad_pred[0].any() and not grad_target[0].any()  # samples do not mix
    # The differentiable path gives the same values as the fused kernel used without grad.
    with torch.no_grad():
        scale_kernel, shift_kernel = scale_shift(pred_t, target_t, torch.from_numpy(mask))
    torch.testing.assert_close(scale.detach(), scale_kernel, rtol=1e-12, atol=0)
    torch.testing.assert_close(shift.detach(), shift_kernel, rtol=1e-12, atol=0)


def test_gradcheck_in_float64():
    rng = np.random.default_rng(10)
    pred, target, mask = random_case(rng, batch=2, size=(5, 6))
    pred_t = torch.from_numpy(pred).double().requires_grad_()
    target_t = torch.from_numpy(target).double().requires_grad_()
    mask_t = torch.from_numpy(mask)
    assert torch.autograd.gradcheck(lambda p, g: scale_shift(p, g, mask_t), (pred_t, target_t))
    assert torch.autograd.gradcheck(lambda p, g: align(p, g, mask_t), (pred_t, target_t))


# ----------------------------------------------------------------------------- no host sync
def test_unchecked_path_gives_nan_for_invalid_samples_and_no_error():
    rng = np.random.default_rng(11)
    pred, target, mask = random_case(rng, batch=3)
    mask[1] = False
    pred[2][mask[2]] = 0.5
    for backend in ("numpy", "torch"):
        inputs = (pred, target, mask) if backend == "numpy" else tuple(map(torch.from_numpy, (pred, target, mask)))
        scale, shift = scale_shift(*inputs, check=False)
        scale, shift = np.asarray(scale), np.asarray(shift)
        assert np.isnan(scale[1:]).all() and np.isnan(shift[1:]).all(), backend
        s_ref, t_ref = lstsq_reference(pred[0], target[0], mask[0])
        np.testing.assert_allclose([scale[0], shift[0]], [s_ref, t_ref], rtol=1e-9)


def test_tensor_path_compiles_as_one_graph():
    # No per-sample Python branch on tensor values: dynamo traces the whole call.
    rng = np.random.default_rng(12)
    pred, target, mask = map(torch.from_numpy, random_case(rng, batch=3))
    torch._dynamo.reset()
    compiled = torch.compile(lambda p, g, m: align(p, g, m, check=False), backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(pred, target, mask), align(pred, target, mask), rtol=1e-6, atol=1e-6)


def test_tensor_path_reads_no_value_back():
    # Meta tensors have shapes but no values: any .item(), .tolist() or bool() would raise.
    pred = torch.empty(4, 1, 8, 8, device="meta")
    mask = torch.empty(4, 1, 8, 8, dtype=torch.bool, device="meta")
    scale, shift = scale_shift(pred, pred, mask, check=False)
    assert scale.shape == (4,) and scale.device.type == "meta" and scale.dtype == torch.float64
    assert align(pred, pred, mask, check=False).shape == pred.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_values_and_gradients_without_a_sync():
    rng = np.random.default_rng(13)
    pred, target, mask = map(torch.from_numpy, random_case(rng, batch=3))
    results = {}
    for device in ("cpu", "cuda"):
        p = pred.to(device).requires_grad_()
        scale, shift = scale_shift(p, target.to(device), mask.to(device))
        (scale.sum() + 2 * shift.sum()).backward()
        results[device] = (scale.detach().cpu(), shift.detach().cpu(), p.grad.cpu())
    (s_cpu, t_cpu, g_cpu), (s_gpu, t_gpu, g_gpu) = results.values()
    torch.testing.assert_close(s_gpu, s_cpu, rtol=1e-9, atol=0)
    torch.testing.assert_close(t_gpu, t_cpu, rtol=1e-9, atol=0)
    torch.testing.assert_close(g_gpu, g_cpu, rtol=1e-5, atol=1e-6)
    on_gpu = [x.cuda() for x in (pred, target, mask)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device → host read-back now raises
    try:
        align(*on_gpu, check=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_align_shift_is_the_mean_difference_on_the_mask(backend):
    rng = np.random.default_rng(4)
    pred = rng.random((3, 1, 9, 7)).astype(np.float32)
    target = rng.random((3, 1, 9, 7)).astype(np.float32)
    mask = rng.random((3, 1, 9, 7)) < 0.4
    pred[~mask] = np.nan  # outside the mask anything goes
    expected = [float(np.mean(target[b][mask[b]].astype(np.float64) - pred[b][mask[b]])) for b in range(3)]
    args = (pred, target, mask) if backend == "numpy" else tuple(map(torch.from_numpy, (pred, target, mask)))
    shifted = np.asarray(align_shift(*args))
    assert shifted.dtype == np.float32 and shifted.shape == pred.shape
    for b in range(3):
        np.testing.assert_allclose(shifted[b][mask[b]], pred[b][mask[b]] + expected[b], rtol=1e-6)
        # the shift is the least-squares one: the residual on the mask has zero mean
        assert abs(np.mean(target[b][mask[b]].astype(np.float64) - shifted[b][mask[b]])) < 1e-6
    single = align_shift(pred[0, 0], target[0, 0], mask[0, 0])
    np.testing.assert_allclose(single[mask[0, 0]], shifted[0, 0][mask[0, 0]], rtol=1e-7)


def test_align_shift_errors():
    pred, target = np.zeros((2, 1, 4, 4)), np.ones((2, 1, 4, 4))
    mask = np.ones((2, 1, 4, 4), bool)
    mask[1] = False
    with pytest.raises(ValueError, match="sample 1 has no mask pixel"):
        align_shift(pred, target, mask)
    target[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="sample 0 has NaN or inf"):
        align_shift(pred, target, np.ones_like(mask))
    with pytest.raises(ValueError, match="same shape"):
        align_shift(pred, target[:, :, :2], mask)
