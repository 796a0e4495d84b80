r"""Least-squares scale-and-shift alignment of relative depth (paper §3.1, Eq. 1).

A relative depth model knows depth only up to an unknown affine map: ``s·d + t``
looks as right as ``d``. To compare, merge or supervise two such maps we fit

.. math::  (s, t) = \arg\min_{s,t} \sum_{p \in M} (s\,\hat d_p + t - d_p)^2

on a region ``M`` where both are trusted (ADIW fits ``D_b`` to ``D_o`` on the
visible pixels of the target). The closed form is

.. math::  s = \frac{S_{\hat d d}}{S_{\hat d \hat d}}, \qquad t = \bar d - s\,\bar{\hat d},
           \qquad S_{ab} = \sum_{p \in M} (a_p - \bar a)(b_p - \bar b).

Accuracy. The sums are *centred*: ``Σx² − n·x̄²`` loses the digits that the mean
has beyond the spread (five of sixteen on 0.1 + U(0, 1e-3)). Both paths
accumulate in float64, whatever the input dtype:

- the general path (torch) takes two passes, the mean first, then the centred sums
  with the correction ``− (Σdx)²/n`` that cancels the mean's own rounding error;
- the CPU kernel (numba) reads the data once, in blocks of ``BLOCK`` pixels. Each
  block is summed around a pivot near the mean — the first block's own mean, then
  the running mean — so no large terms cancel, and the blocks are merged with the
  pairwise update of Chan, Golub & LeVeque (1979), compensated (Neumaier) across
  the thousand or so blocks of a large image.

Against a ``np.longdouble`` reference the scale agrees to about 1e-15 and the shift to
≤ 1e-10 (about 1e-11 where the shift is 1e-4 of the depths it cancels), even when the
first pixel is an outlier far from the mean (``tests/test_align.py``). The pivot was
once simply the first masked pixel; an outlier there left the scale 1e-8 off.

Devices, gradients, syncs. One function serves numpy arrays and torch tensors of
shape ``(H, W)``, ``(1, H, W)`` or batched ``(B, 1, H, W)`` (one fit per sample).
NumPy arrays, and CPU tensors when no gradient is wanted, go through the kernel
(``benchmarks/bench_align.py`` compares it with a ``numpy.linalg.lstsq`` loop).
Everything else — GPU tensors, any input that requires grad (so a loss can
backpropagate through ``s`` and ``t`` on every device alike), code under
``torch.compile`` — takes the general path, which has no Python branch on tensor
values. The validity of each sample is computed as a tensor; with ``check=True``
(the default, for the API boundary) it is read back in one transfer and a faulty
sample is named in a ``ValueError``; with ``check=False`` nothing is read back and a
faulty sample gets NaN.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numba import njit

MIN_VALID_PIXELS = 2
BLOCK = 1024  # pixels summed around one pivot: small enough to stay in cache, large enough to amortise a merge
# Per-sample problem codes, in the order they are reported.
OK, TOO_FEW, NOT_FINITE, CONSTANT = 0, 1, 2, 3


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _check_shapes(pred, target, mask) -> None:
    if tuple(pred.shape) != tuple(target.shape) or tuple(pred.shape) != tuple(mask.shape):
        raise ValueError(
            "pred, target and mask must have the same shape, got "
            f"{tuple(pred.shape)}, {tuple(target.shape)} and {tuple(mask.shape)}"
        )
    if pred.ndim not in (2, 3, 4):
        raise ValueError(f"expected (H, W), (1, H, W) or (B, 1, H, W), got shape {tuple(pred.shape)}")
    if pred.ndim == 4 and pred.shape[1] != 1:
        raise ValueError(f"batched input must be (B, 1, H, W), got shape {tuple(pred.shape)}")


# ----------------------------------------------------------------------------- general path (torch)
def _flat_batches(pred, target, mask):
    """Tensors viewed as ``(B, N)`` float64 / bool; ``B = 1`` for a single map."""

    batch = pred.shape[0] if pred.ndim == 4 else 1
    return (
        pred.reshape(batch, -1).to(torch.float64),
        target.reshape(batch, -1).to(torch.float64),
        mask.reshape(batch, -1).to(torch.bool),
    )


def _centred_moments(p, g, m):
    """``(n, x̄, ȳ, S_xx, S_xy)``, each ``(B,)``, of ``(B, N)`` float64 tensors on the bool mask ``m``.

    Two passes and differentiable. Values off the mask never enter (``where``, not a
    product with the mask, so a NaN there stays out, gradients included).
    """

    zero = p.new_zeros(())
    n = m.sum(1, dtype=p.dtype)
    mean_p = torch.where(m, p, zero).sum(1) / n
    mean_g = torch.where(m, g, zero).sum(1) / n
    dp = torch.where(m, p - mean_p[:, None], zero)
    dg = torch.where(m, g - mean_g[:, None], zero)
    # Σdp is zero in exact arithmetic; what is left is the rounding of the mean, removed here.
    sum_p, sum_g = dp.sum(1), dg.sum(1)
    sxx = (dp * dp).sum(1) - sum_p * sum_p / n
    sxy = (dp * dg).sum(1) - sum_p * sum_g / n
    return n, mean_p + sum_p / n, mean_g + sum_g / n, sxx, sxy


# ----------------------------------------------------------------------------- CPU kernel (numba)
_FASTMATH = {"reassoc", "contract", "nsz"}  # reassociation lets LLVM vectorise the sums; NaN/inf keep their meaning


@njit(fastmath=_FASTMATH, cache=True)
def _block_sums(pred, target, mask, x0, y0):  # pragma: no cover - compiled
    """``(n, Σdx, Σdy, Σdx², Σdx·dy)`` of one block, ``dx = pred − x0``, ``dy = target − y0`` on ``mask``.

    Selects instead of branches, so the loop vectorises; float64 accumulators.
    """
    n = 0.0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    for i in range(pred.shape[0]):
        w = mask[i] != 0
        dx = np.float64(pred[i]) - x0
        dy = np.float64(target[i]) - y0
        dx = dx if w else 0.0
        dy = dy if w else 0.0
        n += np.float64(mask[i])
        sx += dx
        sy += dy
        sxx += dx * dx
        sxy += dx * dy
    return n, sx, sy, sxx, sxy


@njit(fastmath=_FASTMATH, cache=True)
def _block_means(pred, target, mask):  # pragma: no cover - compiled
    """``(n, x̄, ȳ)`` of one block on ``mask`` (NaN means when it has no masked pixel)."""
    n = 0.0
    sx = 0.0
    sy = 0.0
    for i in range(pred.shape[0]):
        w = mask[i] != 0
        x = np.float64(pred[i])
        y = np.float64(target[i])
        n += np.float64(mask[i])
        sx += x if w else 0.0
        sy += y if w else 0.0
    if n == 0:
        return n, np.nan, np.nan
    return n, sx / n, sy / n


@njit(cache=True)
def _add(total, compensation, value):  # pragma: no cover - compiled
    """Neumaier's compensated ``total + value``: returns the new ``(total, compensation)``."""
    new = total + value
    if abs(total) >= abs(value):
        compensation += (total - new) + value
    else:
        compensation += (value - new) + total
    return new, compensation


@njit(cache=True)  # no fastmath here: reassociation would optimise the compensation away
def _blocked_moments(pred, target, mask, block):  # pragma: no cover - compiled
    """Per row of ``(B, N)`` arrays (mask as uint8): ``[n, x̄, ȳ, S_xx, S_xy]``, ``(B, 5)`` float64.

    Each block is summed around a pivot close to its mean — the first block's own mean
    (one extra pass over that block only), then the running mean — and merged into the
    running moments (Chan, Golub & LeVeque): with ``δ`` the difference of the means,
    ``S ← S + S_block + δ_x·δ_y·n·n_block/(n + n_block)``. The thousand or so merges of
    a large image are summed with compensation, so they add no error of their own.
    NaN/inf inside the mask make the moments non-finite. (A serial loop: numba's
    ``prange`` stopped the inner loop from vectorising and was slower on two cores.)
    """
    out = np.zeros((pred.shape[0], 5))
    for b in range(pred.shape[0]):
        n = 0.0
        # running means (the pivots) and moments, each with its compensation term
        mean_x, mean_y, sxx, sxy = np.nan, np.nan, 0.0, 0.0
        c_x, c_y, c_xx, c_xy = 0.0, 0.0, 0.0, 0.0
        for start in range(0, pred.shape[1], block):
            stop = min(start + block, pred.shape[1])
            if n == 0:
                k, mean_x, mean_y = _block_means(pred[b, start:stop], target[b, start:stop], mask[b, start:stop])
                if k == 0:
                    continue
            k, sx, sy, kxx, kxy = _block_sums(pred[b, start:stop], target[b, start:stop], mask[b, start:stop], mean_x, mean_y)
            if k == 0:
                continue
            # Chan's S_block + δ²·n·k/(n + k), with the block mean − running mean δ = Σd/k, is
            # Σd² − (Σd)²/(n + k): no large terms cancel, since the pivot is near the mean.
            total = n + k
            sxx, c_xx = _add(sxx, c_xx, kxx - sx * sx / total)
            sxy, c_xy = _add(sxy, c_xy, kxy - sx * sy / total)
            mean_x, c_x = _add(mean_x, c_x * (n / total), sx / total)
            mean_y, c_y = _add(mean_y, c_y * (n / total), sy / total)
            n = total
        out[b, 0] = n
        out[b, 1] = mean_x + c_x
        out[b, 2] = mean_y + c_y
        out[b, 3] = sxx + c_xx
        out[b, 4] = sxy + c_xy
    return out


def _cpu_array(x) -> np.ndarray:
    """A numpy view of a CPU tensor (no copy for float32/64 and bool) or the array itself."""
    if _is_torch(x):
        x = x.detach()
        if x.is_floating_point() and x.element_size() < 4:  # float16/bfloat16 have no numpy twin here
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _kernel_moments(pred, target, mask):
    """``(n, x̄, ȳ, S_xx, S_xy)`` as float64 numpy ``(B,)`` arrays, from the CPU kernel."""
    batch = pred.shape[0] if pred.ndim == 4 else 1
    p, g, m = (_cpu_array(x).reshape(batch, -1) for x in (pred, target, mask))
    if p.dtype != g.dtype or p.dtype not in (np.float32, np.float64):
        p, g = p.astype(np.float64), g.astype(np.float64)
    p, g = np.ascontiguousarray(p), np.ascontiguousarray(g)
    m = np.ascontiguousarray(m, dtype=np.bool_).view(np.uint8)  # bool → uint8 is a free view and loads faster
    return tuple(_blocked_moments(p, g, m, BLOCK).T)


# ----------------------------------------------------------------------------- solve and check
def _solve(n, mean_p, mean_g, sxx, sxy):
    """``(scale, shift, problem)`` per sample from the moments; numpy or torch, no branch on values.

    ``problem`` holds :data:`OK`, :data:`TOO_FEW`, :data:`NOT_FINITE` or :data:`CONSTANT`;
    the scale and shift of a faulty sample are NaN.
    """
    xp = torch if _is_torch(n) else np
    finite = xp.isfinite(mean_p) & xp.isfinite(mean_g) & xp.isfinite(sxx) & xp.isfinite(sxy)
    # A prediction constant on the mask carries no depth ordering: any scale fits equally.
    constant = sxx <= (1e-12 * xp.abs(mean_p)) ** 2 * n
    problem = xp.where(n < MIN_VALID_PIXELS, TOO_FEW, xp.where(~finite, NOT_FINITE, xp.where(constant, CONSTANT, OK)))
    ok = problem == OK
    # A safe denominator keeps faulty samples' NaN/inf out of the others' gradients.
    scale = xp.where(ok, sxy / xp.where(ok, sxx, 1.0), np.nan)
    shift = xp.where(ok, mean_g - scale * mean_p, np.nan)
    return scale, shift, problem


def _raise_for_problems(problem, n) -> None:
    """Raise a ``ValueError`` naming the first faulty sample; one read-back for tensors."""
    if _is_torch(problem):
        problem, n = torch.stack([problem.to(n.dtype), n]).tolist()  # the single device → host transfer
    else:
        problem, n = problem.tolist(), n.tolist()
    for b, (code, count) in enumerate(zip(problem, n)):
        if code == TOO_FEW:
            raise ValueError(f"sample {b}: the mask has {int(count)} valid pixels, need at least {MIN_VALID_PIXELS}")
        if code == NOT_FINITE:
            raise ValueError(f"sample {b}: NaN or inf inside the mask")
        if code == CONSTANT:
            raise ValueError(f"sample {b}: the prediction is constant on the mask; the scale is undetermined")


def _use_kernel(pred, target, mask) -> bool:
    """NumPy input, or CPU tensors in eager mode that need no gradient."""
    if not _is_torch(pred):
        return True

    if torch.compiler.is_compiling():
        return False
    if torch.is_grad_enabled() and (pred.requires_grad or target.requires_grad):
        return False
    return all(x.device.type == "cpu" for x in (pred, target, mask))


# ----------------------------------------------------------------------------- public
def scale_shift(pred, target, mask, *, check: bool = True):
    """Least-squares ``(scale, shift)`` with ``scale·pred + shift ≈ target`` on ``mask``.

    Args:
        pred: the map to be aligned, numpy array or torch tensor, ``(H, W)``, ``(1, H, W)``
            or ``(B, 1, H, W)``. Values outside ``mask`` may be anything (NaN included).
        target: the reference map, same shape.
        mask: where to fit, same shape, bool or {0, 1}.
        check: raise on a faulty sample (one device read-back for tensors). ``False``
            reads nothing back — the call then neither syncs a GPU nor breaks a
            ``torch.compile`` graph — and gives a faulty sample NaN.

    Returns:
        ``(scale, shift)``: float64 scalars (Python floats) for a single map, or
        arrays/tensors of shape ``(B,)`` (float64, on ``pred``'s device) for batched
        input. Tensors carry the gradient with respect to ``pred`` and ``target``
        whenever one of them requires grad, on every device.

    Raises:
        ValueError: mismatched shapes; with ``check``, a sample with fewer than 2 mask
            pixels, with a prediction constant on the mask, or with NaN/inf inside the
            mask (the message names the sample).
    """
    _check_shapes(pred, target, mask)
    if _use_kernel(pred, target, mask):
        moments = _kernel_moments(pred, target, mask)
    else:
        moments = _centred_moments(*_flat_batches(pred, target, mask))
    scale, shift, problem = _solve(*moments)
    if check:
        _raise_for_problems(problem, moments[0])
    if _is_torch(pred) and not _is_torch(scale):
        scale, shift = torch.from_numpy(scale), torch.from_numpy(shift)
    if pred.ndim == 4:
        return scale, shift
    return float(scale[0]), float(shift[0])


def align(pred, target, mask, *, check: bool = True):
    """``pred`` mapped by the least-squares scale and shift that best match ``target`` on ``mask``.

    The whole map is transformed (the fit uses ``mask`` only). Same type, dtype, device
    and shape as ``pred``, differentiable like :func:`scale_shift`, which documents the
    shapes, ``check`` and the errors.
    """
    if pred.ndim == 4:
        scale, shift = scale_shift(pred, target, mask, check=check)
        if _is_torch(pred):
            aligned = pred.to(scale.dtype) * scale.view(-1, 1, 1, 1) + shift.view(-1, 1, 1, 1)
            return aligned.to(pred.dtype)
        aligned = np.asarray(pred, np.float64) * scale[:, None, None, None] + shift[:, None, None, None]
        return aligned.astype(np.asarray(pred).dtype, copy=False)
    if _is_torch(pred):
        # Through the batched call, so that scale and shift stay tensors (and keep their gradient).
        return align(pred.reshape(1, 1, *pred.shape[-2:]), target.reshape(1, 1, *pred.shape[-2:]),
                     mask.reshape(1, 1, *pred.shape[-2:]), check=check).reshape(pred.shape)
    scale, shift = scale_shift(pred, target, mask, check=check)
    return (np.asarray(pred, np.float64) * scale + shift).astype(np.asarray(pred).dtype, copy=False)


def align_shift(pred, target, mask):
    """``pred`` plus the least-squares *shift* alone (scale fixed at 1) that matches ``target`` on ``mask``.

    The shift is the mean of ``target − pred`` over ``mask``, accumulated in float64.
    Where the scale is ill-conditioned, fit this instead: on a nearly flat fit region the
    least-squares scale is about ``var(target) / (var(target) + e²)`` for an error ``e`` of
    the prediction there, so a small error flattens the whole aligned map, the part
    outside the region included (the hidden bend of notebook 04's toy, for one).

    Args:
        pred, target, mask: numpy arrays or torch tensors of one shape, ``(H, W)``,
            ``(1, H, W)`` or ``(B, 1, H, W)`` (one shift per sample); ``mask`` bool or {0, 1}.

    Returns:
        ``pred`` shifted, same type, dtype, device and shape.

    Raises:
        ValueError: mismatched shapes, a sample without a mask pixel, or NaN/inf inside the mask.
    """
    _check_shapes(pred, target, mask)
    batched = pred.ndim == 4
    if _is_torch(pred):
        p, g = pred.reshape(pred.shape[0] if batched else 1, -1), target.reshape(pred.shape[0] if batched else 1, -1)
        m = mask.reshape(p.shape) > 0
        difference = torch.where(m, g.to(torch.float64) - p.to(torch.float64), torch.zeros((), dtype=torch.float64,
                                                                                             device=p.device))
        count = m.sum(1)
        bad_values = (~torch.isfinite(difference)).any(1)
        shift = difference.sum(1) / count.clamp(min=1)
        problems = torch.stack([count == 0, bad_values]).cpu()
    else:
        p = np.asarray(pred, np.float64).reshape(pred.shape[0] if batched else 1, -1)
        g = np.asarray(target, np.float64).reshape(p.shape)
        m = np.asarray(mask).reshape(p.shape) > 0
        difference = np.where(m, g - p, 0.0)
        count = m.sum(1)
        bad_values = (~np.isfinite(difference)).any(1)
        shift = difference.sum(1) / np.maximum(count, 1)
        problems = np.stack([count == 0, bad_values])
    for row, reason in zip(problems, ("has no mask pixel", "has NaN or inf inside the mask")):
        if row.any():
            where = int(np.flatnonzero(np.asarray(row))[0])
            raise ValueError(f"sample {where} {reason}; cannot fit a shift")
    if _is_torch(pred):
        shape = (-1, 1, 1, 1) if batched else ()
        return (pred.to(torch.float64) + (shift.view(shape) if batched else shift[0])).to(pred.dtype)
    shifted = np.asarray(pred, np.float64) + (shift[:, None, None, None] if batched else shift[0])
    return shifted.astype(np.asarray(pred).dtype, copy=False)
