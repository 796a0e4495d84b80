"""Notebook exercises with checked answers, and the notebooks with their solutions filled in.

Each exercise in a notebook is three cells, tagged so that tools can find them:

- ``exercise``: a code cell defining a function whose body raises ``NotImplementedError``
  (the learner completes it);
- ``check``: a code cell calling :func:`check` with the learner's function, the library's own
  function as reference and a generator of fresh random inputs;
- ``solution``: a markdown cell, folded, holding the solution in one ```` ```python ```` block.
  It is markdown so that ``make reproduce`` (papermill runs every *code* cell) never runs it
  over the learner's starter.

:func:`check` never raises in a normal run: an unsolved exercise prints ``not solved yet`` and a
wrong one ``✗``, so a notebook runs to its end either way. With ``AMODAL_SOLUTIONS=1`` a wrong or
unsolved answer raises ``AssertionError``: the test suite runs each notebook with
:func:`with_solutions` (every starter replaced by its solution) and that setting, so a solution
that no longer agrees with the library fails the suite.
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any, Callable, Mapping

import numpy as np

SOLUTIONS_ENV = "AMODAL_SOLUTIONS"
PASSED, FAILED, UNSOLVED = "✓", "✗", "not solved yet"
EXERCISE_TAGS = ("exercise", "check", "solution")
_FENCE = re.compile(r"```python\n(.*?)```", re.S)


def solutions_checked() -> bool:
    """True when ``AMODAL_SOLUTIONS=1``: a wrong or unsolved answer then raises."""
    return os.environ.get(SOLUTIONS_ENV, "") == "1"


def _plain(x: Any) -> Any:
    """A torch tensor as a numpy array (without importing torch: the harness needs none here)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return x


def mismatch(got: Any, want: Any, rtol: float = 1e-6, atol: float = 1e-8, where: str = "result") -> str | None:
    """How ``got`` differs from ``want``, or None when they agree.

    Numbers and arrays (numpy or torch) agree within ``rtol``/``atol`` (``numpy.isclose``, NaN
    equal to NaN), bool arrays exactly; tuples and lists element by element; mappings on the
    reference's keys. The text names the first difference, e.g. ``result[1]: 0.52 ≠ 0.5``.
    """
    got, want = _plain(got), _plain(want)
    if isinstance(want, Mapping):
        if not isinstance(got, Mapping):
            return f"{where}: expected a mapping, got {type(got).__name__}"
        for key in want:
            if key not in got:
                return f"{where}: key {key!r} missing"
            found = mismatch(got[key], want[key], rtol, atol, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{where}: expected {len(want)} values, got {got!r:.80}"
        for i, (g, w) in enumerate(zip(got, want)):
            found = mismatch(g, w, rtol, atol, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(want, str):
        return None if got == want else f"{where}: {got!r} ≠ {want!r}"
    want_array = np.asarray(want)
    try:
        got_array = np.asarray(got)
    except Exception:  # noqa: BLE001 - anything that is not array-like is simply a wrong answer
        return f"{where}: expected a number or an array, got {type(got).__name__}"
    if got_array.shape != want_array.shape:
        return f"{where}: shape {got_array.shape} ≠ {want_array.shape}"
    if want_array.dtype == bool:
        wrong = got_array.astype(bool) != want_array
    else:
        if not np.issubdtype(got_array.dtype, np.number) and got_array.dtype != bool:
            return f"{where}: expected numbers, got dtype {got_array.dtype}"
        wrong = ~np.isclose(got_array.astype(np.float64), want_array.astype(np.float64), rtol, atol, equal_nan=True)
    if not wrong.any():
        return None
    index = tuple(int(i) for i in np.argwhere(wrong)[0])
    label = f"{where}{list(index)}" if index else where
    return f"{label}: {got_array[index].item()!r} ≠ {want_array[index].item()!r} ({int(wrong.sum())} of {wrong.size} differ)"


def check(learner: Callable, reference: Callable, cases: Callable[[np.random.Generator], tuple], *,
          name: str | None = None, n: int = 5, rtol: float = 1e-6, atol: float = 1e-8, seed: int | None = None) -> bool:
    """Call ``learner`` and ``reference`` on ``n`` fresh inputs, print one line, say whether all agreed.

    Args:
        learner: the function the learner completed.
        reference: the library's function, wrapped to take the same arguments.
        cases: ``cases(rng) -> args`` draws the positional arguments of one call from a numpy
            ``Generator``; each call gets new ones, so a hard-coded answer cannot pass.
        name: the name printed (default: the learner's ``__name__``).
        n: how many inputs.
        rtol, atol: the tolerance of :func:`mismatch`.
        seed: the generator's seed (default: fresh entropy, printed with a failure).

    Returns:
        True when every answer agreed. Prints ``✓ name: passed on n fresh inputs``,
        ``✗ name: <first mismatch>`` or ``not solved yet: name``.

    Raises:
        AssertionError: a wrong or unsolved answer, only with ``AMODAL_SOLUTIONS=1``.
    """
    name = name or getattr(learner, "__name__", "exercise")
    seed = int(np.random.SeedSequence(seed).entropy % 2**32) if seed is None else seed
    rng = np.random.default_rng(seed)
    problem = None
    for k in range(n):
        args = cases(rng)
        try:
            got = learner(*copy.deepcopy(args))   # copies: a learner writing into its inputs
        except NotImplementedError:               # must not change the reference's
            return _report(f"{UNSOLVED}: {name}", False)
        except Exception as exc:  # noqa: BLE001 - the learner's error is the answer to report
            problem = f"raised {type(exc).__name__}: {exc}"
        else:
            problem = mismatch(got, reference(*args), rtol, atol)
        if problem:
            return _report(f"{FAILED} {name}: {problem} (input {k + 1} of {n}, seed {seed})", False)
    return _report(f"{PASSED} {name}: passed on {n} fresh inputs", True)


def _report(line: str, ok: bool) -> bool:
    print(line)
    if not ok and solutions_checked():
        raise AssertionError(line)
    return ok


# ----------------------------------------------------------------------------- notebooks
def _tags(cell: Mapping) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _source(cell: Mapping) -> str:
    return "".join(cell["source"])


def exercises(notebook: Mapping) -> list[tuple[int, int, int]]:
    """``(starter, check, solution)`` cell indices of each exercise of a notebook (its JSON as a dict).

    Raises:
        ValueError: a tagged cell out of that order, of the wrong cell type, or a solution
            without one ```` ```python ```` block.
    """
    cells = notebook["cells"]
    tagged = [(i, tag) for i, c in enumerate(cells) for tag in _tags(c) if tag in EXERCISE_TAGS]
    found = []
    for k in range(0, len(tagged), 3):
        triple = tagged[k:k + 3]
        if [tag for _, tag in triple] != list(EXERCISE_TAGS):
            raise ValueError(f"cells {[i for i, _ in triple]}: expected an exercise, a check and a solution in "
                             f"that order, got tags {[tag for _, tag in triple]}")
        (starter, _), (checker, _), (solution, _) = triple
        kinds = [cells[i]["cell_type"] for i in (starter, checker, solution)]
        if kinds != ["code", "code", "markdown"]:
            raise ValueError(f"cells {starter}, {checker}, {solution}: want code, code, markdown, got {kinds}")
        if len(_FENCE.findall(_source(cells[solution]))) != 1:
            raise ValueError(f"cell {solution}: a solution holds exactly one ```python block")
        found.append((starter, checker, solution))
    return found


def solution_code(cell: Mapping) -> str:
    """The code of a ``solution`` cell's ```` ```python ```` block."""
    return _FENCE.findall(_source(cell))[0]


def with_solutions(notebook: Mapping) -> dict:
    """A copy of ``notebook`` in which each exercise's starter cell holds its solution's code."""
    solved = copy.deepcopy(dict(notebook))
    for starter, _, solution in exercises(solved):
        solved["cells"][starter]["source"] = solution_code(solved["cells"][solution]).splitlines(keepends=True)
    return solved
