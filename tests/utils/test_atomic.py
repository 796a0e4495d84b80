"""amodal.utils.atomic: files, folders and sets of files appear whole or not at all."""
import errno
import json
import os

import pytest

from amodal.utils.atomic import (
    atomic_directory,
    atomic_file_set,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    incomplete_sets,
    remove_leftovers,
)


def test_text_and_json_round_trip(tmp_path):
    atomic_write_text(tmp_path / "a" / "x.txt", "héllo")
    assert (tmp_path / "a" / "x.txt").read_text(encoding="utf-8") == "héllo"
    atomic_write_json(tmp_path / "x.json", {"b": 1, "a": [2]}, sort_keys=True)
    assert (tmp_path / "x.json").read_text() == '{"a": [2], "b": 1}\n'
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [2], "b": 1}


def test_failed_writer_keeps_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")

    def broken(p):
        p.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["x.txt"]


def test_writer_that_writes_elsewhere_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="wrote nothing"):
        atomic_write(tmp_path / "x.npy", lambda p: None)
    assert not (tmp_path / "x.npy").exists()


def test_fsync_is_called_on_file_and_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    atomic_write_text(tmp_path / "x.txt", "data")
    assert len(synced) == 2  # the temporary file before the rename, the folder after it
    synced.clear()
    atomic_write_text(tmp_path / "y.txt", "data", fsync=False)
    assert synced == []


def test_directory_replaced_whole(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "stale.bin").write_text("old")
    (folder / "config.json").write_text("old")
    with atomic_directory(folder) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.") and tmp.name.endswith(".tmp")
        (tmp / "config.json").write_text("new")
        (tmp / "unet").mkdir()
        (tmp / "unet" / "w.bin").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "unet"]
    assert (folder / "config.json").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_directory_crash_keeps_old_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(folder) as tmp:
            (tmp / "config.json").write_text("half")
            raise KeyboardInterrupt
    assert (folder / "config.json").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_remove_leftovers_only_touches_temporaries(tmp_path):
    (tmp_path / ".a.png.12.0.tmp").write_text("x")
    (tmp_path / ".b.12.1.tmp").mkdir()
    (tmp_path / "keep.png").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    assert remove_leftovers(tmp_path) == 2
    assert sorted(os.listdir(tmp_path)) == [".hidden", "keep.png"]


def _files(folder):
    """Every entry of ``folder``: a file's text, or ``"<folder>"``."""
    return {p.name: p.read_text() if p.is_file() else "<folder>" for p in sorted(folder.iterdir())}


def _old_set(folder):
    for name, text in {"a.png": "old png", "a.npy": "old npy", "a.ply": "old ply", "b.png": "other"}.items():
        (folder / name).write_text(text)


def test_file_set_replaces_the_set_whole_and_drops_what_the_new_one_lacks(tmp_path):
    _old_set(tmp_path)
    with atomic_file_set(tmp_path, "a", replaces=["a.png", "a.npy", "a.ply"]) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".a.")
        (temporary / "a.png").write_text("new png")
        (temporary / "a.npy").write_text("new npy")
    # a.ply belonged to the old set only; b.png to no set of a
    assert _files(tmp_path) == {"a.npy": "new npy", "a.png": "new png", "b.png": "other"}
    assert incomplete_sets(tmp_path) == []


def test_file_set_full_disk_midway_keeps_the_old_set_and_leaves_no_trace(tmp_path):
    _old_set(tmp_path)
    with pytest.raises(OSError) as error:
        with atomic_file_set(tmp_path, "a", replaces=["a.png", "a.npy", "a.ply"]) as temporary:
            (temporary / "a.png").write_text("new png")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert error.value.errno == errno.ENOSPC
    assert _files(tmp_path) == {"a.npy": "old npy", "a.ply": "old ply", "a.png": "old png", "b.png": "other"}


def test_file_set_cut_during_the_renames_is_marked_and_redone(tmp_path, monkeypatch):
    _old_set(tmp_path)
    real_replace, calls = os.replace, []

    def killed_at_the_third(source, target):  # 1: the marker's own atomic write, 2: the first file, 3: the second
        calls.append(target)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as far as this test is concerned, the process dies here
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", killed_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        with atomic_file_set(tmp_path, "a", replaces=["a.png", "a.npy", "a.ply"]) as temporary:
            (temporary / "a.npy").write_text("new npy")
            (temporary / "a.png").write_text("new png")
    monkeypatch.undo()
    files = _files(tmp_path)
    assert files["a.npy"] == "new npy" and files["a.png"] == "old png"  # a mix ...
    assert files[".a.incomplete"] == "a.npy\na.png\n"  # ... and its marker, listing the new set
    assert incomplete_sets(tmp_path) == ["a"]
    assert [name for name, text in files.items() if text == "<folder>"]  # the killed writer's temporary folder
    with atomic_file_set(tmp_path, "a", replaces=["a.png", "a.npy", "a.ply"]) as temporary:
        (temporary / "a.npy").write_text("newer npy")
        (temporary / "a.png").write_text("newer png")
    # the mix, the marker and the killed writer's temporary folder are gone
    assert _files(tmp_path) == {"a.npy": "newer npy", "a.png": "newer png", "b.png": "other"}
    assert incomplete_sets(tmp_path) == []
