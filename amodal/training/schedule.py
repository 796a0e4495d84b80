r"""The learning-rate schedule of both official recipes: linear warm-up, then exponential decay.

The official configs name it ``IterExponential`` (inherited from Marigold). With ``w``
warm-up steps, decay length ``T`` (``total_iter`` in the configs, counted from step 0)
and final ratio ``r``, the factor on the base learning rate at step ``n`` is

.. math::

    f(n) = \begin{cases}
        n / w                              & n < w \\
        r^{(n - w) / (T - w)}               & w \le n < T \\
        r                                  & n \ge T
    \end{cases}

so it starts at 0, reaches 1 at the end of the warm-up and ``r`` at step ``T``, and
stays there (training may run past ``T``: Amodal-DAV2 decays over 50k steps but stops
at 60k). It is recomputed from ``n`` at every step rather than multiplied step by step,
so a resumed run gets exactly the same factor.
"""
from __future__ import annotations

import math


def lr_factor(step: int, warmup_steps: int, decay_steps: int, final_ratio: float) -> float:
    """The factor ``f(step)`` above.

    Args:
        step: the optimiser step, from 0.
        warmup_steps: ``w`` (0: no warm-up).
        decay_steps: ``T``, the step at which the factor reaches ``final_ratio``; > ``w``.
        final_ratio: ``r`` in (0, 1].

    Raises:
        ValueError: a negative step, ``T ≤ w`` or ``r`` outside (0, 1].
    """
    if step < 0:
        raise ValueError(f"step must be ≥ 0, got {step}")
    if warmup_steps < 0 or decay_steps <= warmup_steps:
        raise ValueError(f"need 0 ≤ warmup_steps < decay_steps, got {warmup_steps} and {decay_steps}")
    if not 0 < final_ratio <= 1:
        raise ValueError(f"final_ratio must lie in (0, 1], got {final_ratio}")
    if step < warmup_steps:
        return step / warmup_steps
    if step >= decay_steps:
        return float(final_ratio)
    return math.exp((step - warmup_steps) / (decay_steps - warmup_steps) * math.log(final_ratio))
