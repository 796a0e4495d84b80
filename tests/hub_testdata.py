"""A Hugging Face Hub cache written by hand, in the layout ``huggingface_hub`` documents.

The cache guide of ``huggingface_hub`` ("Understand caching") lays a model repository out as::

    <cache>/models--ORG--NAME/
        blobs/<sha256 of the file>            the bytes, once
        refs/<revision>                       the commit hash a branch or tag points at
        snapshots/<commit>/<path in repo>     a relative symlink to the blob

Written here with plain file operations, never with ``huggingface_hub``'s own writer, so that
the resolver is tested against the documented layout rather than against itself.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def repo_folder(cache: Path, repo: str) -> Path:
    """``<cache>/models--ORG--NAME``."""
    return Path(cache) / ("models--" + repo.replace("/", "--"))


def add_to_cache(cache: Path, repo: str, files: dict[str, bytes | Path], revision: str = "main",
                 commit: str | None = None) -> str:
    """Put ``files`` (path in the repository → bytes, or a local file to copy) into the cache
    as one commit of ``repo`` that ``revision`` points at; returns the commit hash."""
    folder = repo_folder(cache, repo)
    contents = {name: data.read_bytes() if isinstance(data, Path) else data for name, data in files.items()}
    if commit is None:
        digest = hashlib.sha1(repo.encode() + revision.encode())
        for name in sorted(contents):
            digest.update(name.encode() + contents[name])
        commit = digest.hexdigest()
    for name, data in contents.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    ref = folder / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)
    return commit


def folder_files(folder: Path) -> dict[str, Path]:
    """Every file under ``folder``, by its path inside it (``unet/config.json``): a saved model
    laid out as a repository."""
    folder = Path(folder)
    return {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob("*")) if path.is_file()}
