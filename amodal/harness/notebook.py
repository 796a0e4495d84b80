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
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from amodal.utils.atomic import atomic_write_json
from amodal.utils.hub import is_local_or_hub_id
from amodal.utils.paths import runs_dir
from amodal.utils.seeding import resolve_device, seed_everything

PROFILES = ("quick", "full")


def load_profile(notebook: str, profile: str) -> dict[str, Any]:
    """The settings of ``notebook`` (e.g. ``"02_scale_shift_alignment"``) in ``profile``.

    Raises:
        ValueError: unknown profile, or a notebook without a profile file.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    source = resources.files("amodal.harness.profiles") / f"{notebook}.json"
    if not source.is_file():
        raise ValueError(f"no profile file amodal/harness/profiles/{notebook}.json for notebook {notebook!r}")
    table = json.loads(source.read_text())
    return dict(table[profile])


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

    def __getitem__(self, key: str) -> Any:
        return self.settings[key]

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
            "seed": self.seed,
            "device": self.device,
            "figures": self.figures,
            "metrics": _plain(metrics),
        }
        return atomic_write_json(self.output_dir / "metrics.json", record, indent=2, sort_keys=True)


def setup_run(
    notebook: str,
    profile: str = "quick",
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    device: str = "auto",
    **overrides: Any,
) -> Run:
    """Turn a notebook's ``parameters`` cell into a :class:`Run`.

    Args:
        notebook: the notebook's name without ``.ipynb``.
        profile: ``"quick"`` or ``"full"``.
        output_dir: where figures and ``metrics.json`` go; default ``runs/<profile>/<notebook>``.
        seed: seeds Python, numpy and torch.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        overrides: parameters that replace profile settings of the same name (a value of
            ``None`` keeps the profile's); unknown names are an error so typos show.
    """
    settings = load_profile(notebook, profile)
    for key, value in overrides.items():
        if key not in settings:
            raise ValueError(f"{notebook}: unknown setting {key!r}; known: {sorted(settings)}")
        if value is not None:
            settings[key] = value
    folder = Path(output_dir) if output_dir else runs_dir() / profile / notebook
    folder.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    return Run(notebook, profile, settings, folder, seed, resolve_device(device))


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
