"""Weights by Hugging Face Hub id: one resolver for every place that takes a checkpoint path.

Anywhere a path to weights goes (``from_pretrained``, ``--model``, ``--init``, ``--depth``,
``--vae``, ``--sam-checkpoint``, ``--base``, the notebooks' checkpoint parameters) a hub id
goes too::

    ORG/NAME                  the file(s) the loader needs (from :data:`KNOWN_WEIGHTS`, or the loader's own)
    ORG/NAME@REVISION         the same at a branch, tag or commit
    ORG/NAME:FILE             one file of the repository (``FILE`` may hold folders: ``checkpoints/x.pth``)
    ORG/NAME@REVISION:FILE

:func:`resolve` turns a spec into a local file or folder. **A spec that exists on disk is a
path and wins**: a local folder ``zhyever/Amodal-Depth-Anything-DAV2`` is read as that
folder, never looked up on the hub. A spec that does not exist and is shaped like a hub id
(not absolute, not ``./``, two parts, a NAME that does not end like a file: ``x/y.pth`` is a
missing path) is fetched through ``huggingface_hub.hf_hub_download``, so the hub's own cache
and settings apply: ``HF_HOME`` / ``HF_HUB_CACHE`` say where the cache lives,
``HF_HUB_OFFLINE=1`` reads the cache only, and a file already cached is not downloaded again
(online, the hub is asked only whether the revision moved). The environment is read at each
call (``huggingface_hub`` reads it once, at import), so a change made in the running process
counts too. Every file of one spec comes from one commit: the first file pins it.

A hub file that cannot be had (offline and not cached, no network, no such repository,
revision or file) is a ``FileNotFoundError`` naming the repository, the file(s) and the
``hf download`` command that fetches them; nothing raised inside ``huggingface_hub`` reaches
the user as it is. Anything else that does not exist is the plain "not found" it always was.

Every spec resolved in the process is remembered with what it gave (:func:`resolutions`), so
that a report can say which file the weights it names were read from, whoever loaded them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx
from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

# ORG/NAME, then @REVISION (may hold "/", as refs/pr/1 does), then :FILE
_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[^:@\s]+))?(?::(?P<filename>[^:/\s][^:]*))?$")
# a NAME ending like a file is a path that does not exist, not a repository
_FILE_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".bin", ".json", ".npy", ".npz", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class HubFiles:
    """What to fetch from a repository, and what to hand the loader.

    Attributes:
        files: fetched, all needed; the first pins the commit.
        optional: fetched when the repository has them (e.g. ``config.json`` beside weights).
        folder: hand the loader this folder of the snapshot (``""``: its root); ``None``:
            the file ``files[0]``.
    """

    files: tuple[str, ...]
    optional: tuple[str, ...] = ()
    folder: str | None = None


@dataclass(frozen=True)
class KnownWeights:
    """A repository of released weights: what ``ORG/NAME`` alone fetches, and what it is."""

    fetch: HubFiles
    what: str
    licence: str
    size: str
    source: str                  # where the id and file names were read
    also: tuple[str, ...] = ()   # other files of the repository a loader may pick by name


_SD_VAE = HubFiles(("vae/config.json", "vae/diffusion_pytorch_model.safetensors"), folder="vae")
_SAM = ("checkpoints/sam_vit_h_4b8939.pth", "checkpoints/sam_vit_l_0b3195.pth", "checkpoints/sam_vit_b_01ec64.pth")
_DAV2_README = "github.com/DepthAnything/Depth-Anything-V2, README (Pre-trained Models; LICENSE section)"
# transformers' DepthAnythingForDepthEstimation folders: config.json says the taps and the depth type
_DAV2_HF = HubFiles(("model.safetensors", "config.json"), folder="")
_DAV2_HF_SOURCE = ("huggingface.co/docs/transformers, model_doc/depth_anything_v2 (the -hf ids) and each repository's "
                   "file list (config.json, model.safetensors) and licence")

KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    "depth-anything/Depth-Anything-V2-Small": KnownWeights(
        HubFiles(("depth_anything_v2_vits.pth",)), "Depth Anything V2 ViT-S (24.8M parameters)",
        "Apache-2.0", "≈ 99 MB", _DAV2_README),
    "depth-anything/Depth-Anything-V2-Base": KnownWeights(
        HubFiles(("depth_anything_v2_vitb.pth",)), "Depth Anything V2 ViT-B (97.5M parameters)",
        "CC-BY-NC-4.0", "≈ 390 MB", _DAV2_README),
    "depth-anything/Depth-Anything-V2-Large": KnownWeights(
        HubFiles(("depth_anything_v2_vitl.pth",)), "Depth Anything V2 ViT-L (335.3M parameters)",
        "CC-BY-NC-4.0", "≈ 1.3 GB", _DAV2_README),
    "depth-anything/Depth-Anything-V2-Small-hf": KnownWeights(
        _DAV2_HF, "Depth Anything V2 ViT-S in the transformers format (DepthAnythingForDepthEstimation), read as a "
        "folder", "Apache-2.0", "≈ 99 MB", _DAV2_HF_SOURCE),
    "depth-anything/Depth-Anything-V2-Base-hf": KnownWeights(
        _DAV2_HF, "Depth Anything V2 ViT-B in the transformers format (DepthAnythingForDepthEstimation), read as a "
        "folder", "CC-BY-NC-4.0", "≈ 390 MB", _DAV2_HF_SOURCE),
    "depth-anything/Depth-Anything-V2-Large-hf": KnownWeights(
        _DAV2_HF, "Depth Anything V2 ViT-L in the transformers format (DepthAnythingForDepthEstimation), read as a "
        "folder", "CC-BY-NC-4.0", "≈ 1.3 GB", _DAV2_HF_SOURCE),
    "zhyever/Amodal-Depth-Anything-DAV2": KnownWeights(
        HubFiles(("model.safetensors",), optional=("config.json",), folder=""),
        "the released Amodal-DAV2 (ViT-L), read as a folder", "MIT (the authors' repository)", "≈ 1.4 GB",
        "github.com/zhyever/Amodal-Depth-Anything, README (Pretrained Models) and infer.py / app.py "
        "(PyTorchModelHubMixin.from_pretrained: model.safetensors + config.json)"),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": KnownWeights(
        _SD_VAE, "Stable Diffusion 1.5's VAE (subfolder vae/), the copy of runwayml/stable-diffusion-v1-5",
        "CreativeML OpenRAIL-M", "≈ 335 MB",
        "github.com/CompVis/depth-fm and github.com/zhyever/Amodal-Depth-Anything, src/models/depthfm/dfm.py "
        "(runwayml/stable-diffusion-v1-5, subfolder vae); diffusers' own docs name this copy"),
    "runwayml/stable-diffusion-v1-5": KnownWeights(
        _SD_VAE, "the repository the official DepthFM code names; taken off the hub in 2024, so only a cache "
        "that already holds it serves it", "CreativeML OpenRAIL-M", "≈ 335 MB",
        "github.com/CompVis/depth-fm, depthfm/dfm.py"),
    "ybelkada/segment-anything": KnownWeights(
        HubFiles(_SAM[:1]), "SAM ViT-H, L, B: a mirror of the official files (the authors host them at "
        "dl.fbaipublicfiles.com, not on the hub); ORG/NAME alone is ViT-H", "Apache-2.0",
        "≈ 2.6 GB / 1.2 GB / 375 MB",
        "github.com/huggingface/transformers, src/transformers/models/sam/convert_sam_to_hf.py "
        "(hf_hub_download('ybelkada/segment-anything', 'checkpoints/<name>.pth'))", also=_SAM[1:]),
}


# spec → what resolve() gave for it, in order (a hub id may give several files, one per loader)
_RESOLVED: dict[str, list[Path]] = {}


@dataclass(frozen=True)
class HubSpec:
    """A parsed hub id: ``repo`` ``ORG/NAME``, and the ``revision`` and ``filename`` when given."""

    repo: str
    revision: str | None = None
    filename: str | None = None

    def __str__(self) -> str:
        return self.repo + (f"@{self.revision}" if self.revision else "") + (f":{self.filename}" if self.filename else "")


def parse_hub_id(spec: str | os.PathLike) -> HubSpec | None:
    """The hub id ``spec`` is shaped like, or ``None`` (a path: absolute, ``./``, ``~``, three
    parts, a NAME ending like a file, or not a valid repository name). Looks at nothing on disk."""
    text = os.fspath(spec)
    match = _HUB_ID.match(text)
    if match is None or match["repo"].lower().endswith(_FILE_SUFFIXES):
        return None
    try:
        validate_repo_id(match["repo"])
    except HFValidationError:
        return None
    return HubSpec(match["repo"], match["revision"], match["filename"])


def is_local_or_hub_id(spec) -> bool:
    """``spec`` is a file or folder here, or shaped like a hub id (not fetched: see :func:`resolve`)."""
    return spec is not None and (Path(spec).exists() or parse_hub_id(spec) is not None)


def resolve(spec: str | os.PathLike, default_filename: str | None = None, *, fallback: HubFiles | None = None,
            what: str = "weights") -> Path:
    """A local file or folder for ``spec``: a path as it is, or a hub id fetched into the cache.

    A spec that exists on disk is a path and wins, even a folder named like ``ORG/NAME``.
    For a hub id without ``:FILE`` the file is, in this order: ``default_filename`` (the
    loader knows which it needs, e.g. SAM's file of a model type; looked up by name among a
    known repository's files), the repository's entry in :data:`KNOWN_WEIGHTS`, ``fallback``
    (what the loader reads from an unknown repository, e.g. a ``save_pretrained`` folder).

    Args:
        spec: a path, or ``ORG/NAME[@REVISION][:FILE]``.
        default_filename: the file a loader needs from any repository.
        fallback: the files a loader reads from a repository the table does not know.
        what: the kind of weights, for messages (``"Depth Anything V2 checkpoint"``).

    Returns:
        The path itself, or the file / folder in the hub cache's snapshot.

    Raises:
        FileNotFoundError: no such path and not a hub id; or a hub file that cannot be had
            (the message names the repository, the file(s) and the ``hf download`` command).
        ValueError: a hub id whose file the loader cannot guess (name it: ``ORG/NAME:FILE``).
    """
    if spec is None:
        raise FileNotFoundError(f"no {what} given: pass a path or a Hugging Face Hub id (ORG/NAME)")
    if Path(spec).exists():
        return _remember(spec, Path(spec))
    hub = parse_hub_id(spec)
    if hub is None:
        raise FileNotFoundError(f"{what} not found: {spec}")
    known = KNOWN_WEIGHTS.get(hub.repo)
    if hub.filename:
        files = HubFiles((hub.filename,))
    elif default_filename:
        named = [f for f in (known.fetch.files + known.also if known else ()) if PurePosixPath(f).name == default_filename]
        files = HubFiles((named[0] if named else default_filename,))
    elif known is not None:
        files = known.fetch
    elif fallback is not None:
        files = fallback
    else:
        raise ValueError(f"{spec}: which file of {hub.repo} holds the {what}? Name it: {hub.repo}:FILE")
    return _remember(spec, _fetch(hub, files, str(spec), what))


def resolutions() -> dict[str, list[Path]]:
    """Each spec :func:`resolve` was given in this process → the files or folders it gave, in order."""
    return {spec: list(paths) for spec, paths in _RESOLVED.items()}


def _remember(spec, path: Path) -> Path:
    given = _RESOLVED.setdefault(os.fspath(spec), [])
    if path not in given:
        given.append(path)
    return path


def pin(spec: str | os.PathLike, resolved: Path) -> str:
    """``spec`` naming exactly what :func:`resolve` fetched for it: ``ORG/NAME@COMMIT:FILE`` for a
    file (``ORG/NAME@COMMIT`` for a folder) of a hub id, ``spec`` itself for a path.

    A pinned id names the same weights on every machine whatever its cache's place, and
    resolving it again reads the cache without asking the hub.
    """
    hub = None if Path(spec).exists() else parse_hub_id(spec)
    parts = Path(resolved).parts
    if hub is None or "snapshots" not in parts:
        return os.fspath(spec)
    at = len(parts) - 1 - parts[::-1].index("snapshots")
    inner = "/".join(parts[at + 2:])
    return f"{hub.repo}@{parts[at + 1]}" + (f":{inner}" if Path(resolved).is_file() else "")


def download_command(repo: str, files, revision: str | None = None) -> str:
    """The ``hf`` command that puts ``files`` of ``repo`` into the cache."""
    return " ".join(["hf download", repo, *files] + (["--revision", revision] if revision else []))


def cache_dir() -> Path:
    """The hub cache as the environment names it now: ``HF_HUB_CACHE``, else ``HF_HOME/hub``."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.path.expandvars(os.path.expanduser(os.environ[name])))
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.path.expanduser(os.environ["HF_HOME"]))) / "hub"
    return Path(constants.HF_HUB_CACHE)


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is on now, or was when ``huggingface_hub`` was imported."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"} or constants.HF_HUB_OFFLINE


def _fetch(hub: HubSpec, files: HubFiles, spec: str, what: str) -> Path:
    """Each file of ``files`` from one commit; the file or folder the loader reads."""
    cache, local_only = cache_dir(), offline()
    revision, snapshot, first = hub.revision, None, None
    for name in files.files + files.optional:
        try:
            local = Path(hf_hub_download(hub.repo, name, revision=revision, cache_dir=cache,
                                         local_files_only=local_only))
        except (LocalEntryNotFoundError, EntryNotFoundError, OfflineModeIsEnabled) as error:
            if name in files.optional:
                continue  # absent from the repository, or not cached while offline: not needed
            raise FileNotFoundError(_why(hub, files, spec, what, error, cache, local_only)) from None
        except (HfHubHTTPError, HFValidationError, httpx.HTTPError) as error:
            raise FileNotFoundError(_why(hub, files, spec, what, error, cache, local_only)) from None
        if snapshot is None:
            first = local
            snapshot = local.parents[len(PurePosixPath(name).parts) - 1]
            revision = snapshot.name  # the commit: every further file comes from it
    if snapshot is None:
        raise ValueError(f"{spec}: nothing to fetch")
    return first if files.folder is None else snapshot / files.folder


def _why(hub: HubSpec, files: HubFiles, spec: str, what: str, error: Exception, cache: Path, local_only: bool) -> str:
    """One line: which repository and file(s), what went wrong, and what to do."""
    at = f"{hub.repo}@{hub.revision}" if hub.revision else hub.repo
    names = ", ".join(files.files)
    command = download_command(hub.repo, files.files, hub.revision)
    head = f"{what} {spec}: no such file or folder here; as a Hugging Face Hub id"
    if isinstance(error, GatedRepoError):
        return (f"{head}: {hub.repo} is gated: accept its terms at https://huggingface.co/{hub.repo} and log in "
                "with `hf auth login`, then run the same command again")
    if isinstance(error, RepositoryNotFoundError):
        return (f"{head}: no repository {hub.repo} (or it is private: log in with `hf auth login`); "
                "check the id, or give a local path")
    if isinstance(error, RevisionNotFoundError):
        return f"{head}: {hub.repo} has no revision {hub.revision!r}; give a branch, tag or commit it has"
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        reason = ("downloads are off (HF_HUB_OFFLINE=1)" if local_only
                  else "the hub could not be reached (no network?)")
        return (f"{head}: {names} of {at} is not in the Hugging Face cache ({cache}) and {reason}; "
                f"download it where there is a network with `{command}` (into the same HF_HOME / HF_HUB_CACHE), "
                "or give a local path")
    if isinstance(error, EntryNotFoundError):
        return (f"{head}: {at} has no file {names}; name the file that holds the {what}: {hub.repo}:FILE "
                f"(https://huggingface.co/{hub.repo}/tree/main lists them)")
    detail = " ".join(str(error).split())[:200]
    return f"{head}: fetching {names} of {at} failed ({type(error).__name__}: {detail}); try again, or `{command}`"
