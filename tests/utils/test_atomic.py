"""amodal.utils.atomic: files and folders appear whole or not at all."""
import json
import os

import pytest

from amodal.utils.atomic import atomic_directory, atomic_write, atomic_write_json, atomic_write_text, remove_leftovers


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
