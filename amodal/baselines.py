"""Fill baselines: what a learned amodal model has to beat.

Each guesses the hidden part ``M_inv = M_a ∧ ¬M_vis`` of the target from the observed
depth ``D_o`` on its visible part alone, and keeps ``D_o`` everywhere else. They share the
signature ``fill(image, amodal_mask, observed_depth, visible_mask) -> (H, W)`` so the
evaluation scores them like a model (the image is not read):

- ``observed`` — ``D_o`` as it is: the occluder's depth stays in the hole (what a plain
  depth model answers; the floor every method should clear).
- ``visible_mean`` — the mean of ``D_o`` over the visible object.
- ``nearest_visible`` — each hidden pixel takes the value of the nearest visible object
  pixel (Euclidean distance; ties go to the lower row, then column).
- ``harmonic`` — the smoothest fill: the discrete Laplace equation on the hidden pixels
  (each equals the mean of its 4-neighbours inside ``M_a``), with the visible object as
  boundary values and no flux through the object's outline.
- ``plane`` — the least-squares plane ``a·x + b·y + c`` through the visible object,
  clipped to [0, 1].

Hidden pixels that no visible pixel reaches (a component of ``M_inv`` that touches no
visible pixel inside ``M_a``) fall back to the visible mean; with no visible pixel at all
every fill is ``D_o``'s mean over the image, and ``observed`` is unchanged.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy.ndimage import binary_dilation, distance_transform_edt, label
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve


def _maps(amodal_mask, observed_depth, visible_mask):
    amodal = np.asarray(amodal_mask) > 0.5
    observed = np.asarray(observed_depth, dtype=np.float64)
    visible = (np.asarray(visible_mask) > 0.5) & amodal
    if not amodal.shape == observed.shape == visible.shape or observed.ndim != 2:
        raise ValueError(f"amodal_mask, observed_depth and visible_mask must be one (H, W) shape, got "
                         f"{np.shape(amodal_mask)}, {np.shape(observed_depth)}, {np.shape(visible_mask)}")
    return amodal, observed, visible, amodal & ~visible


def _fallback(observed, visible) -> float:
    return float(observed[visible].mean()) if visible.any() else float(observed.mean())


def observed(image, amodal_mask, observed_depth, visible_mask) -> np.ndarray:
    """``D_o`` unchanged."""
    return _maps(amodal_mask, observed_depth, visible_mask)[1].astype(np.float32)


def visible_mean(image, amodal_mask, observed_depth, visible_mask) -> np.ndarray:
    """Hidden pixels get the mean of ``D_o`` on the visible object."""
    _, d, visible, hidden = _maps(amodal_mask, observed_depth, visible_mask)
    out = d.copy()
    out[hidden] = _fallback(d, visible)
    return out.astype(np.float32)


def nearest_visible(image, amodal_mask, observed_depth, visible_mask) -> np.ndarray:
    """Hidden pixels get ``D_o`` of the nearest visible object pixel."""

    _, d, visible, hidden = _maps(amodal_mask, observed_depth, visible_mask)
    out = d.copy()
    if not visible.any():
        out[hidden] = _fallback(d, visible)
        return out.astype(np.float32)
    _, (rows, cols) = distance_transform_edt(~visible, return_indices=True)
    out[hidden] = d[rows[hidden], cols[hidden]]
    return out.astype(np.float32)


def harmonic(image, amodal_mask, observed_depth, visible_mask) -> np.ndarray:
    """Hidden pixels solve Laplace's equation inside ``M_a`` with the visible object as boundary."""

    amodal, d, visible, hidden = _maps(amodal_mask, observed_depth, visible_mask)
    out = d.copy()
    if not hidden.any():
        return out.astype(np.float32)
    # components of the hidden part that touch no visible pixel have no boundary value
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    components, count = label(hidden, structure=cross)
    touching = np.zeros(count + 1, bool)
    touching[np.unique(components[binary_dilation(visible, cross) & hidden])] = True
    touching[0] = False
    solvable = touching[components] & hidden
    out[hidden & ~solvable] = _fallback(d, visible)
    if not solvable.any():
        return out.astype(np.float32)
    index = -np.ones(d.shape, np.int64)
    index[solvable] = np.arange(solvable.sum())
    rows, cols, values = [], [], []
    rhs = np.zeros(solvable.sum())
    degree = np.zeros(solvable.sum())
    h, w = d.shape
    pr, pc = np.nonzero(solvable)
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        qr, qc = pr + dr, pc + dc
        inside = (qr >= 0) & (qr < h) & (qc >= 0) & (qc < w)
        p_in, qr, qc = index[pr[inside], pc[inside]], qr[inside], qc[inside]
        in_object = amodal[qr, qc]  # neighbours outside M_a: no flux (Neumann)
        p_in, qr, qc = p_in[in_object], qr[in_object], qc[in_object]
        np.add.at(degree, p_in, 1)
        unknown = index[qr, qc] >= 0
        rows.append(p_in[unknown]), cols.append(index[qr[unknown], qc[unknown]]), values.append(-np.ones(unknown.sum()))
        np.add.at(rhs, p_in[~unknown], d[qr[~unknown], qc[~unknown]])
    n = solvable.sum()
    rows.append(np.arange(n)), cols.append(np.arange(n)), values.append(degree)
    matrix = coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    out[solvable] = spsolve(matrix, rhs)
    return out.astype(np.float32)


def plane(image, amodal_mask, observed_depth, visible_mask) -> np.ndarray:
    """Hidden pixels get the least-squares plane through ``D_o`` on the visible object."""
    _, d, visible, hidden = _maps(amodal_mask, observed_depth, visible_mask)
    out = d.copy()
    if visible.sum() < 3:
        out[hidden] = _fallback(d, visible)
        return out.astype(np.float32)
    vr, vc = np.nonzero(visible)
    design = np.stack([vc, vr, np.ones_like(vr)], 1).astype(np.float64)
    coefficients, *_ = np.linalg.lstsq(design, d[visible], rcond=None)
    hr, hc = np.nonzero(hidden)
    out[hidden] = np.clip(np.stack([hc, hr, np.ones_like(hr)], 1) @ coefficients, 0.0, 1.0)  # depth lives in [0, 1]
    return out.astype(np.float32)


def harmonic_batch(amodal_mask, observed_depth, visible_mask):
    """:func:`harmonic` of each item of a batch of torch maps, ``(B, 1, H, W)`` → ``(B, 1, H, W)``.

    The fill runs on the CPU in float64 (a sparse solve per item, a few ms at 112²) and
    comes back in ``observed_depth``'s dtype and device; no gradient flows through it.
    """

    with torch.no_grad():
        maps = [x.detach().float().cpu().numpy()[:, 0] for x in (amodal_mask, observed_depth, visible_mask)]
        filled = np.stack([harmonic(None, a, d, v) for a, d, v in zip(*maps)])[:, None]
    return torch.from_numpy(filled).to(observed_depth.device, observed_depth.dtype)


BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "observed": observed,
    "visible_mean": visible_mean,
    "nearest_visible": nearest_visible,
    "harmonic": harmonic,
    "plane": plane,
}
