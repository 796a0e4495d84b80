"""The notebooks' harness: profiles, device, seed, and where outputs go.

Every notebook has a cell tagged ``parameters`` (papermill injects values there)::

    PROFILE = os.environ.get("AMODAL_PROFILE", "quick")
    OUTPUT_DIR = None      # default: runs/<profile>/<notebook>/
    SEED = 0
    DEVICE = "auto"

and the next cell turns it into a :class:`Run` with :func:`setup_run`. The settings
of each profile live in ``amodal/harness/profiles/<notebook>.json`` (keys ``quick`` and
``full``, each a flat dict with the same keys), so that they are versioned and
tested with the library rather than scattered over notebook cells.

- ``quick``: a 2-core CPU, no weights, synthetic or sample data, ≤ 90 s a notebook.
- ``full``: a GPU, real checkpoints and data; the reproduction.

**The rehearsal** (``AMODAL_REHEARSAL=1``, :mod:`amodal.harness.rehearsal`) runs the full
profile with weights and data in the real formats and at the real sizes, on a CPU, with
fewer of everything that is counted: each profile file may have a third section,
``rehearsal``, whose settings replace the full profile's. Only the settings named in
:data:`COUNTS` (steps, samples, images, scenes, resamples) may be replaced, each by a
smaller number; never a size, a weights file or a data folder (:func:`apply_rehearsal`).
Claims about what trained weights achieve (a loss that falls, samples that find both
shapes) are made with :meth:`Run.expect`: an ``assert`` in every run but a rehearsal,
whose weights are random stand-ins; there each is recorded in ``metrics.json``, met or not.

Each run records which weights and data it used (:meth:`Run.uses`): ``metrics.json`` names
each by what was given (a path or a hub id) and by the file it was read from, as the
resolver found it (:func:`amodal.utils.hub.resolutions`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from amodal.utils.atomic import atomic_write_json
from amodal.utils.hub import is_local_or_hub_id, pin, resolutions
from amodal.utils.paths import repo_root, runs_dir
from amodal.utils.seeding import resolve_device, seed_everything

PROFILES = ("quick", "full")
REHEARSAL_ENV = "AMODAL_REHEARSAL"
# The settings that count something (steps, samples, images, scenes, resamples): the only
# ones a rehearsal may lower. Sizes, weights and data are not among them.
COUNTS = frozenset({
    "max_sources", "samples_per_image", "quality_n",                      # 01
    "batch",                                                              # 02, 05
    "toy_train_steps", "samples", "sampling_steps", "coverage_scenes",    # 04
    "euler_steps", "shift_steps",
    "steps", "warmup", "held_out",                                        # 05, 06
    "resamples", "mask_scenes", "middlebury_items", "ablation_steps",     # 06
    "ablation_pool", "ablation_held_out",
    "synth_count", "adiw_sources", "adiw_samples_per_image",              # 07
    "depthfm_samples", "depthfm_steps",
})
# Checks on what a real depth model predicts, which random stand-in weights cannot pass (the
# complete-object ring test wants objects nearer than their surroundings): a rehearsal may turn
# these off, and only these; its table says so.
RANDOM_WEIGHT_CHECKS = frozenset({"ring_test"})


def rehearsal_requested(environ=None) -> bool:
    """``AMODAL_REHEARSAL`` is set to 1 / true / yes / on."""
    value = (os.environ if environ is None else environ).get(REHEARSAL_ENV, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_profile(notebook: str, profile: str, rehearsal: bool = False) -> dict[str, Any]:
    """The settings of ``notebook`` (e.g. ``"02_scale_shift_alignment"``) in ``profile``.

    Args:
        rehearsal: the full profile with the counts of the file's ``rehearsal`` section
            (:func:`apply_rehearsal`).

    Raises:
        ValueError: unknown profile, a notebook without a profile file, a rehearsal of the
            quick profile, or a rehearsal section that changes more than counts.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    source = resources.files("amodal.harness.profiles") / f"{notebook}.json"
    if not source.is_file():
        raise ValueError(f"no profile file amodal/harness/profiles/{notebook}.json for notebook {notebook!r}")
    table = json.loads(source.read_text())
    if not rehearsal:
        return dict(table[profile])
    if profile != "full":
        raise ValueError(f"{REHEARSAL_ENV}=1 rehearses the full profile; unset it for the {profile} profile")
    return apply_rehearsal(notebook, table["full"], table.get("rehearsal", {}))


def apply_rehearsal(notebook: str, full: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    """The full profile's ``full`` settings with the rehearsal's smaller ``counts`` (and, of
    :data:`RANDOM_WEIGHT_CHECKS`, those it turns off).

    Raises:
        ValueError: a setting that is not a count (:data:`COUNTS`) or not in the full
            profile, a value that is not a whole number ≥ 1 (or a list of them), or one
            larger than the full profile's (where that is 0, "all", any cap is smaller).
    """
    settings = dict(full)
    for key, value in counts.items():
        if key in RANDOM_WEIGHT_CHECKS and key in full:
            if value is not False:
                raise ValueError(f"{notebook}: a rehearsal may only turn {key!r} off (false), got {value!r}")
            settings[key] = False
            continue
        if key not in COUNTS or key not in full:
            raise ValueError(f"{notebook}: the rehearsal may lower counts only ({', '.join(sorted(COUNTS & set(full)))}), "
                             f"not {key!r}")
        numbers, limit = (value, full[key]) if isinstance(value, list) else ([value], [full[key]])
        whole = all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in numbers)
        if not numbers or not whole or isinstance(value, list) != isinstance(full[key], list):
            raise ValueError(f"{notebook}: rehearsal {key} must be like the full profile's {full[key]!r} "
                             f"(whole numbers ≥ 1), got {value!r}")
        if max(limit) and max(numbers) > max(limit):
            raise ValueError(f"{notebook}: rehearsal {key} = {value!r} is more than the full profile's {full[key]!r}")
        settings[key] = value
    return settings


@dataclass
class Run:
    """One execution of a notebook: its settings and where its outputs go."""

    notebook: str
    profile: str
    settings: dict[str, Any]
    output_dir: Path
    seed: int
    device: str
    figures: list[str] = field(default_factory=list)
    rehearsal: bool = False
    weights: dict[str, Any] = field(default_factory=dict)      # role → path or hub id (see uses)
    data: dict[str, Any] = field(default_factory=dict)         # role → folder, file or description
    expectations: dict[str, bool] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.settings[key]

    def uses(self, weights: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> None:
        """Record the weights (role → path or hub id) and data (role → folder or a few words) this
        run reads; :meth:`write_metrics` writes them with the file each weights spec was read from.
        A role given ``None`` (nothing passed) is left out."""
        self.weights.update({k: v for k, v in (weights or {}).items() if v is not None})
        self.data.update({k: v for k, v in (data or {}).items() if v is not None})

    def expect(self, condition: Any, claim: str) -> bool:
        """``assert condition, claim`` for a claim about what trained weights achieve; in a
        rehearsal (random stand-in weights, counts cut) the claim is recorded, met or not."""
        met = bool(condition)
        if not self.rehearsal:
            assert met, claim
        else:
            self.expectations[claim] = met
            if not met:
                print(f"rehearsal, not met with stand-in weights: {claim}")
        return met

    def save_figure(self, figure, name: str) -> Path:
        """Write ``figure`` (matplotlib) as ``<output_dir>/<name>.png`` and return the path."""
        path = self.output_dir / f"{name}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        self.figures.append(path.name)
        return path

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        """Write ``metrics.json`` (the notebook's numbers, its profile and figures)."""
        record = {
            "notebook": self.notebook,
            "profile": self.profile,
            "rehearsal": self.rehearsal,
            "seed": self.seed,
            "device": self.device,
            "figures": self.figures,
            "inputs": {"weights": {role: describe_weights(spec) for role, spec in self.weights.items()},
                       "data": _plain(self.data)},
            "metrics": _plain(metrics),
        }
        if self.rehearsal:
            record["expectations"] = dict(self.expectations)
        return atomic_write_json(self.output_dir / "metrics.json", record, indent=2, sort_keys=True)


def setup_run(
    notebook: str,
    profile: str = "quick",
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    device: str = "auto",
    rehearsal: bool | None = None,
    **overrides: Any,
) -> Run:
    """Turn a notebook's ``parameters`` cell into a :class:`Run`.

    Args:
        notebook: the notebook's name without ``.ipynb``.
        profile: ``"quick"`` or ``"full"``.
        output_dir: where figures and ``metrics.json`` go; default ``runs/<profile>/<notebook>``.
        seed: seeds Python, numpy and torch.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        rehearsal: the full profile with its rehearsal counts (:func:`apply_rehearsal`);
            ``None``: as ``$AMODAL_REHEARSAL`` says.
        overrides: parameters that replace profile settings of the same name (a value of
            ``None`` keeps the profile's); unknown names are an error so typos show.
    """
    rehearsal = rehearsal_requested() if rehearsal is None else rehearsal
    settings = load_profile(notebook, profile, rehearsal)
    for key, value in overrides.items():
        if key not in settings:
            raise ValueError(f"{notebook}: unknown setting {key!r}; known: {sorted(settings)}")
        if value is not None:
            settings[key] = value
    folder = Path(output_dir) if output_dir else runs_dir() / profile / notebook
    folder.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    return Run(notebook, profile, settings, folder, seed, resolve_device(device), rehearsal=rehearsal)


def require_inputs(run: Run, weights: Sequence[str] = (), paths: Sequence[str] = (), hint: str = "") -> None:
    """Stop a run at once, naming the parameter, when an input it needs is missing.

    Args:
        run: the notebook's run.
        weights: settings that name weights: a path that exists or a Hugging Face Hub id
            (``zhyever/Amodal-Depth-Anything-DAV2``; fetched by its loader, which names a hub file
            that cannot be had).
        paths: settings that name data: a file or folder that exists.
        hint: a sentence added to the message.

    Raises:
        FileNotFoundError: ``the full profile needs DAV2_CHECKPOINT (got None) ...``.
    """
    for name in (*weights, *paths):
        value = run[name]
        found = is_local_or_hub_id(value) if name in weights else bool(value) and os.path.exists(value)
        if not found:
            kind = "a path or a Hugging Face Hub id (ORG/NAME)" if name in weights else "a file or folder"
            raise FileNotFoundError(f"the {run.profile} profile needs {name.upper()} (got {value!r}): {kind}; "
                                    f"see the parameters cell{'; ' + hint if hint else ''}")


def describe_weights(spec: Any) -> dict[str, Any]:
    """What ``metrics.json`` says of weights given as ``spec``: the spec, the file(s) or folder(s)
    it was read from in this process (as :func:`amodal.utils.hub.resolve` found them; a path
    that was never resolved is itself), each with its size, and a hub id pinned to its commit."""
    given = str(os.fspath(spec))
    # a relative path may have been read from the checkout (as amodal.inference reads it)
    places = [Path(given)] + ([repo_root() / given] if not Path(given).is_absolute() else [])
    found = next((resolutions()[str(p)] for p in places if str(p) in resolutions()), None)
    found = found or [p for p in places if p.exists()][:1]
    record = {"spec": given, "files": [{"path": str(path), "bytes": _size(path)} for path in found]}
    pinned = sorted({pin(given, path) for path in found} - {str(given)})
    if pinned:
        record["pinned"] = pinned
    if not found:
        record["note"] = "not read in this run"
    return record


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (links followed, as the loaders read them)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays → JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value
