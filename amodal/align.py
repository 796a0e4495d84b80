r"""Least-squares scale-and-shift alignment of relative depth (paper §3.1, Eq. 1).

A relative depth model knows depth only up to an unknown affine map: ``s·d + t``
looks as right as ``d``. To compare, merge or supervise two such maps we fit

.. math::  (s, t) = \arg\min_{s,t} \sum_{p \in M} (s\,\hat d_p + t - d_p)^2

on a region ``M`` where both are trusted (ADIW fits ``D_b`` to ``D_o`` on the
visible pixels of the target). The closed form is

.. math::  s = \frac{\operatorname{cov}_M(\hat d, d)}{\operatorname{var}_M(\hat d)}, \qquad
           t = \bar d - s\,\bar{\hat d}.

Sums are accumulated in float64 around a pivot (the first pixel of the mask, or the
means), which keeps the answer accurate to ~1e-12 even for large images held in
float32. The same function serves numpy arrays and torch tensors of shape ``(H, W)``,
``(1, H, W)`` or batched ``(B, 1, H, W)`` (one scale and shift per sample).

Speed: on the CPU the five sums are gathered in one fused, vectorised pass over the
data by a small numba kernel (the inputs are read once, in their own dtype, never
copied to float64); tensors on a GPU use the same closed form in torch
operations. ``benchmarks/bench_align.py`` compares both with a ``numpy.linalg.lstsq``
loop.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

MIN_VALID_PIXELS = 2


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


def _flat_batches(pred, target, mask):
    """View inputs as ``(B, N)`` float64 / bool; ``B = 1`` for a single map."""
    batch = pred.shape[0] if pred.ndim == 4 else 1
    if _is_torch(pred):
        import torch

        return (
            pred.reshape(batch, -1).to(torch.float64),
            target.reshape(batch, -1).to(torch.float64),
            mask.reshape(batch, -1).to(torch.bool),
        )
    return (
        np.asarray(pred, dtype=np.float64).reshape(batch, -1),
        np.asarray(target, dtype=np.float64).reshape(batch, -1),
        np.asarray(mask).astype(bool).reshape(batch, -1),
    )


def _fit(p, g, m):
    """Closed-form (s, t) per row of ``(B, N)`` float64 arrays/tensors; validates each row."""
    if _is_torch(p):
        import torch

        where, isfinite, absmax = torch.where, torch.isfinite, lambda x: x.abs().amax(1)
        zero = torch.zeros((), dtype=p.dtype, device=p.device)
    else:
        where, isfinite, absmax = np.where, np.isfinite, lambda x: np.abs(x).max(1)
        zero = 0.0
    count = m.sum(1)
    p0 = where(m, p, zero)
    g0 = where(m, g, zero)
    finite = (isfinite(p0) & isfinite(g0)).all(1)
    for b in range(p.shape[0]):
        if int(count[b]) < MIN_VALID_PIXELS:
            raise ValueError(f"sample {b}: the mask has {int(count[b])} valid pixels, need at least {MIN_VALID_PIXELS}")
        if not bool(finite[b]):
            raise ValueError(f"sample {b}: NaN or inf inside the mask")
    mean_p = p0.sum(1) / count
    mean_g = g0.sum(1) / count
    # Centre before multiplying: sums of centred products lose no digits to cancellation.
    dp = where(m, p - mean_p[:, None], zero)
    dg = where(m, g - mean_g[:, None], zero)
    var = (dp * dp).sum(1)
    cov = (dp * dg).sum(1)
    # A prediction constant on the mask carries no depth ordering: any scale fits equally.
    tiny = (1e-12 * (absmax(p0) + 1e-300)) ** 2 * count
    for b in range(p.shape[0]):
        if float(var[b]) <= float(tiny[b]):
            raise ValueError(f"sample {b}: the prediction is constant on the mask; the scale is undetermined")
    scale = cov / var
    shift = mean_g - scale * mean_p
    return scale, shift


_FASTMATH = {"reassoc", "contract", "nsz"}  # reassociation lets LLVM vectorise the sums; NaN/inf keep their meaning


@njit(fastmath=_FASTMATH, cache=True)
def _row_moments(pred, target, mask, x0, y0):  # pragma: no cover - compiled
    """``(n, Σdx, Σdy, Σdx², Σdx·dy)`` of one row with ``dx = pred − x0``, ``dy = target − y0`` on ``mask``.

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
def _pivoted_moments(pred, target, mask):  # pragma: no cover - compiled
    """Per row of ``(B, N)`` arrays (mask as uint8): ``[n, Σdx, Σdy, Σdx², Σdx·dy, x0, y0]``.

    One pass over the data; the pivot ``(x0, y0)`` is the first masked pixel, which removes
    the large common offset that would otherwise cancel catastrophically in
    ``Σx² − n·x̄²``. NaN/inf inside the mask make the sums non-finite, which the caller
    detects. (A serial loop: numba's ``prange`` stopped the inner loop from vectorising
    and was slower on two cores.)
    """
    batch = pred.shape[0]
    out = np.zeros((batch, 7))
    for b in range(batch):
        x0 = 0.0
        y0 = 0.0
        for i in range(pred.shape[1]):
            if mask[b, i] != 0:
                x0 = np.float64(pred[b, i])
                y0 = np.float64(target[b, i])
                break
        n, sx, sy, sxx, sxy = _row_moments(pred[b], target[b], mask[b], x0, y0)
        out[b, 0] = n
        out[b, 1] = sx
        out[b, 2] = sy
        out[b, 3] = sxx
        out[b, 4] = sxy
        out[b, 5] = x0
        out[b, 6] = y0
    return out


def _cpu_array(x) -> np.ndarray:
    """A numpy view of a CPU tensor (no copy for float32/64 and bool) or the array itself."""
    if _is_torch(x):
        x = x.detach()
        if x.is_floating_point() and x.element_size() < 4:  # float16/bfloat16 have no numpy twin here
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _fit_cpu(pred, target, mask):
    """(s, t) as float64 numpy ``(B,)`` from the fused kernel, or ``None`` to defer.

    Defers to the general path (which names the faulty sample) whenever a sample is
    invalid: too few pixels, non-finite values, or a constant prediction.
    """
    batch = pred.shape[0] if pred.ndim == 4 else 1
    p, g, m = (_cpu_array(x).reshape(batch, -1) for x in (pred, target, mask))
    if p.dtype != g.dtype or p.dtype not in (np.float32, np.float64):
        p, g = p.astype(np.float64), g.astype(np.float64)
    p, g = np.ascontiguousarray(p), np.ascontiguousarray(g)
    m = np.ascontiguousarray(m, dtype=np.bool_).view(np.uint8)  # bool → uint8 is a free view and loads faster
    sums = _pivoted_moments(p, g, m)
    n, sx, sy, sxx, sxy, x0, y0 = sums.T
    if not np.isfinite(sums).all() or (n < MIN_VALID_PIXELS).any():
        return None
    mean_dx, mean_dy = sx / n, sy / n
    var = sxx - n * mean_dx * mean_dx
    cov = sxy - n * mean_dx * mean_dy
    spread = np.maximum(np.abs(x0), 1e-300)
    if (var <= (1e-12 * spread) ** 2 * n).any():
        return None
    scale = cov / var
    shift = (y0 + mean_dy) - scale * (x0 + mean_dx)
    return scale, shift


def scale_shift(pred, target, mask):
    """Least-squares ``(scale, shift)`` with ``scale·pred + shift ≈ target`` on ``mask``.

    Args:
        pred: the map to be aligned, numpy array or torch tensor, ``(H, W)``, ``(1, H, W)``
            or ``(B, 1, H, W)``. Values outside ``mask`` may be anything (NaN included).
        target: the reference map, same shape.
        mask: where to fit, same shape, bool or {0, 1}.

    Returns:
        ``(scale, shift)``: float64 scalars (Python floats) for a single map, or
        arrays/tensors of shape ``(B,)`` (float64) for batched input.

    Raises:
        ValueError: mismatched shapes; a sample with fewer than 2 mask pixels, with a
            prediction constant on the mask, or with NaN/inf inside the mask (the
            message names the sample).
    """
    _check_shapes(pred, target, mask)
    on_cpu = not _is_torch(pred) or all(x.device.type == "cpu" for x in (pred, target, mask))
    fitted = _fit_cpu(pred, target, mask) if on_cpu else None
    if fitted is None:
        p, g, m = _flat_batches(pred, target, mask)
        scale, shift = _fit(p, g, m)
    else:
        scale, shift = fitted
        if _is_torch(pred):
            import torch

            scale, shift = torch.from_numpy(scale), torch.from_numpy(shift)
    if pred.ndim == 4:
        return scale, shift
    return float(scale[0]), float(shift[0])


def align(pred, target, mask):
    """``pred`` mapped by the least-squares scale and shift that best match ``target`` on ``mask``.

    The whole map is transformed (the fit uses ``mask`` only). Same type, dtype, device
    and shape as ``pred``; see :func:`scale_shift` for shapes and errors.
    """
    scale, shift = scale_shift(pred, target, mask)
    if pred.ndim == 4:
        if _is_torch(pred):
            aligned = pred.to(scale.dtype) * scale.view(-1, 1, 1, 1) + shift.view(-1, 1, 1, 1)
            return aligned.to(pred.dtype)
        aligned = np.asarray(pred, np.float64) * scale[:, None, None, None] + shift[:, None, None, None]
        return aligned.astype(np.asarray(pred).dtype, copy=False)
    if _is_torch(pred):
        return (pred.double() * scale + shift).to(pred.dtype)
    return (np.asarray(pred, np.float64) * scale + shift).astype(np.asarray(pred).dtype, copy=False)
