"""Fault injection: every bad input to a command is one line on stderr and exit code 2, nothing half-written.

A table of (command, bad input) → the line's telling words, run in-process through
:func:`amodal.cli.main`; then the cases that need other processes or a real file system:
a full disk (a small tmpfs, where the test may mount one), two writers into one folder,
and a kill -9 whose lock is taken over. The fast cases run by default, the others under
the ``slow`` marker.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from adiw_testdata import BrightnessDepth, write_sources
from amodal.adiw.build import BuildConfig, build
from amodal.adiw.sources import find_sources
from amodal.cli import main
from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import TINY

EVALUATE = ["evaluate", "--model", "baseline:harmonic", "--data", "synth", "--count", "2", "--size", "28", "--quiet"]
BUILD = ["build", "--quiet"]
TRAIN = ["train", "--recipe", "amodal-dav2-s-paper", "--data", "synth", "--init", "none", "--quiet",
         "--set", "size=tiny", "--set", "input_size=28", "--set", "batch_size=2", "--set", "batch_per_device=1"]


def run(argv: list[str], capsys) -> tuple[int, str]:
    """``amodal ARGV`` in-process: its exit code and its standard error."""
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """A tiny built ADIW dataset (3 photos), copied by each test that damages it."""
    root = tmp_path_factory.mktemp("adiw")
    write_sources(root / "src", 3)
    build(find_sources(root / "src" / "images", root / "src" / "sa1b"), root / "adiw", BrightnessDepth(),
          BuildConfig(samples_per_image=1, seed=0), progress=False)
    return root


def damaged(shards: Path, tmp_path: Path, damage) -> Path:
    """A copy of the dataset with ``damage(folder, first_record)`` done to it."""
    folder = tmp_path / "adiw"
    shutil.copytree(shards / "adiw", folder)
    manifest = folder / "shard-00000" / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    first = next(r for r in records if r["type"] == "sample")
    damage(folder, first)
    if first is not None:
        manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def tiny_model_folder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    AmodalDAV2(TINY).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


# (name, argv of tmp_path, what the line must say); every case exits 2 and writes no --output
ARGUMENTS = [
    ("evaluate --count 0", lambda t: [*EVALUATE, "--count", "0", "--output", str(t / "out")], "--count: must be ≥ 1"),
    ("evaluate --size 0", lambda t: [*EVALUATE, "--size", "0", "--output", str(t / "out")], "--size: must be ≥ 1"),
    ("evaluate --samples 0", lambda t: [*EVALUATE, "--samples", "0", "--output", str(t / "out")], "--samples: must be ≥ 1"),
    ("evaluate --device bogus", lambda t: [*EVALUATE, "--device", "bogus", "--output", str(t / "out")], "unknown device 'bogus'"),
    ("evaluate --output a file", lambda t: [*EVALUATE, "--output", str(t / "file.txt")], "is a file, not a folder"),
    ("evaluate --model missing", lambda t: ["evaluate", "--model", str(t / "nope"), "--data", "synth", "--count", "2",
                                            "--output", str(t / "out")], "Amodal-DAV2 checkpoint not found"),
    ("evaluate unknown baseline", lambda t: [*EVALUATE[:2], "baseline:nope", *EVALUATE[3:], "--output", str(t / "out")],
     "unknown baseline 'nope'"),
    ("ablate --held-out 0", lambda t: ["ablate", "--held-out", "0", "--output", str(t / "out")], "--held-out: must be ≥ 1"),
    ("build --samples-per-image -3", lambda t: [*BUILD, "--images", str(t), "--samples-per-image", "-3", "--output",
                                                str(t / "out")], "--samples-per-image: must be ≥ 1"),
    ("build --shard-size -2", lambda t: [*BUILD, "--images", str(t), "--shard-size", "-2", "--output", str(t / "out")],
     "--shard-size: must be ≥ 1"),
    ("build --size 0", lambda t: [*BUILD, "--images", str(t), "--size", "0", "--output", str(t / "out")], "--size: must be ≥ 1"),
    ("build --size 8", lambda t: [*BUILD, "--images", str(t), "--size", "8", "--output", str(t / "out")], "size must be a whole number ≥ 16"),
    ("build --sam-checkpoint missing", lambda t: [*BUILD, "--images", str(t), "--sam-checkpoint", str(t / "sam.pth"),
                                                  "--output", str(t / "out")], "--sam-checkpoint not found"),
    ("build --rank 3 of 2", lambda t: [*BUILD, "--images", str(t), "--rank", "3", "--world-size", "2", "--output",
                                       str(t / "out")], "rank must be in [0, world size)"),
    ("train batch_size=0", lambda t: [*TRAIN, "--set", "batch_size=0", "--output", str(t / "out")], "batch_size must be a whole number ≥ 1"),
    ("train batch_size=-4", lambda t: [*TRAIN, "--set", "batch_size=-4", "--output", str(t / "out")], "batch_size must be a whole number ≥ 1"),
    ("train max_steps=0", lambda t: [*TRAIN, "--set", "max_steps=0", "--output", str(t / "out")], "max_steps must be a whole number ≥ 1"),
    ("train max_steps=-5", lambda t: [*TRAIN, "--set", "max_steps=-5", "--output", str(t / "out")], "max_steps must be a whole number ≥ 1"),
    ("train batch_per_device=0", lambda t: [*TRAIN, "--set", "batch_per_device=0", "--output", str(t / "out")],
     "batch_per_device must be a whole number ≥ 1"),
    ("train input_size=0", lambda t: [*TRAIN, "--set", "input_size=0", "--output", str(t / "out")], "input_size must be a whole number ≥ 1"),
    ("train --set lr=fast", lambda t: [*TRAIN, "--set", "lr=fast", "--output", str(t / "out")], "'fast' is not a float"),
]


@pytest.mark.parametrize("name, argv, says", ARGUMENTS, ids=[case[0] for case in ARGUMENTS])
def test_a_bad_argument_is_one_line_and_writes_nothing(tmp_path, capsys, name, argv, says):
    (tmp_path / "file.txt").write_text("not a folder")
    code, err = run(argv(tmp_path), capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and says in err, err
    assert not (tmp_path / "out").exists()  # nothing written before the arguments are valid


def _bad_model_config(tmp_path):
    """The config our files carry in their safetensors metadata, with a string where a width goes."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = tiny_model_folder(tmp_path)
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = handle.metadata()
    config = json.loads(metadata["amodal_config"])
    config["config"]["embed_dim"] = "wide"
    save_file(tensors, str(folder / "model.safetensors"), metadata={**metadata, "amodal_config": json.dumps(config)})
    return folder


def _torn_weights(tmp_path):
    folder = tiny_model_folder(tmp_path)
    truncate(folder / "model.safetensors", 100)
    return folder


def _empty_weights(tmp_path):
    folder = tiny_model_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(b"")
    return folder


MODELS = [
    ("bad config types", _bad_model_config, "config field embed_dim must be a whole number"),
    ("truncated model.safetensors", _torn_weights, "model.safetensors"),
    ("empty model.safetensors", _empty_weights, "model.safetensors"),
]


@pytest.mark.parametrize("name, make, says", MODELS, ids=[case[0] for case in MODELS])
def test_a_damaged_model_is_one_line(tmp_path, capsys, name, make, says):
    folder = make(tmp_path)
    code, err = run(["evaluate", "--model", str(folder), *EVALUATE[3:], "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and says in err, err


def _corrupt_image(folder, record):
    (folder / "shard-00000" / record["files"]["image"]).write_bytes(b"\x89PNG\r\n\x1a\n garbage")


def _missing_depth(folder, record):
    (folder / "shard-00000" / record["files"]["depth"]).unlink()


def _escaping_path(folder, record):
    record["files"]["image"] = "../../secret.png"


def _absolute_path(folder, record):
    record["files"]["image"] = "/etc/hostname"


def _torn_manifest(folder, record):
    manifest = folder / "shard-00000" / "manifest.jsonl"
    manifest.write_text(manifest.read_text()[:-20])


DATASETS = [
    ("corrupt PNG in a shard", _corrupt_image, "not a readable image"),
    ("missing depth file", _missing_depth, "depth file missing"),
    ("manifest path leaves the folder", _escaping_path, "leads outside"),
    ("manifest path is absolute", _absolute_path, "is an absolute path"),
]


@pytest.mark.parametrize("name, damage, says", DATASETS, ids=[case[0] for case in DATASETS])
def test_a_damaged_dataset_is_one_line_naming_the_sample(shards, tmp_path, capsys, name, damage, says):
    data = damaged(shards, tmp_path, damage)
    code, err = run(["evaluate", "--model", "baseline:harmonic", "--data", str(data), "--size", "28", "--quiet",
                     "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1 and says in err and "sample " in err, err


def test_a_torn_manifest_names_the_file_and_line(shards, tmp_path, capsys):
    folder = tmp_path / "adiw"
    shutil.copytree(shards / "adiw", folder)
    _torn_manifest(folder, None)
    code, err = run(["evaluate", "--model", "baseline:harmonic", "--data", str(folder), "--size", "28", "--quiet",
                     "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and "manifest.jsonl:" in err and "not a JSON line" in err, err


def test_a_split_list_with_shard_data_is_refused(shards, tmp_path, capsys):
    (tmp_path / "val.txt").write_text("images/sa_1.jpg depth/1_depth.png\n")
    code, err = run(["evaluate", "--model", "baseline:harmonic", "--data", str(shards / "adiw"), "--split",
                     str(tmp_path / "val.txt"), "--quiet", "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and "applies to the official layout only" in err, err


def test_a_folder_in_use_is_refused(shards, tmp_path, capsys):
    from amodal.utils.locks import FolderLock

    with FolderLock(tmp_path / "out", command="amodal evaluate (another)"):
        code, err = run([*EVALUATE, "--output", str(tmp_path / "out")], capsys)
        assert code == 2 and f"in use by pid {os.getpid()}" in err and "(amodal evaluate (another))" in err, err
        code, err = run([*BUILD, "--images", str(shards / "src" / "images"), "--masks", str(shards / "src" / "sa1b"),
                         "--output", str(tmp_path / "out")], capsys)
        assert code == 2 and "in use by pid" in err, err
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_bug_is_exit_one_and_its_traceback_comes_with_debug(tmp_path, capsys, monkeypatch):
    import amodal.cli.evaluate

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(amodal.cli.evaluate, "evaluate_items", broken)
    code, err = run([*EVALUATE, "--output", str(tmp_path / "out")], capsys)
    assert code == 1 and err.startswith("internal error: ZeroDivisionError: a bug") and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main([*EVALUATE, "--output", str(tmp_path / "out2"), "--debug"])


def test_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    import amodal.evaluation.tables

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(amodal.evaluation.tables, "atomic_write_text", full)
    code, err = run([*EVALUATE, "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and err.startswith("error: disk full (") and "samples.csv" in err, err


# ----------------------------------------------------------------------------- other processes, real file systems
def _amodal(*args, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "amodal", *args], capture_output=True, text=True, env=env, **kwargs)


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KB tmpfs, where this process may mount one (root on Linux)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip() or 'mount failed'}); "
                    "the full-disk path is covered in-process by test_a_full_disk_is_one_line")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_real_full_disk_leaves_no_half_written_file(small_disk, shards):
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (236 * 1024))  # leave about 20 KB: the report and a few samples, not all
    result = _amodal("build", "--images", str(shards / "src" / "images"), "--masks", str(shards / "src" / "sa1b"),
                     "--output", str(small_disk / "adiw"), "--quiet", "--samples-per-image", "4")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: disk full") and result.stderr.count("\n") == 1, result.stderr
    assert not list(small_disk.rglob("*.tmp")) and not list(small_disk.rglob(".*.tmp"))
    filler.unlink()  # space again: the same command finishes the build
    result = _amodal("build", "--images", str(shards / "src" / "images"), "--masks", str(shards / "src" / "sa1b"),
                     "--output", str(small_disk / "adiw"), "--quiet", "--samples-per-image", "4")
    assert result.returncode == 0, result.stderr
    assert json.loads((small_disk / "adiw" / "report.json").read_text())["sources_pending"] == 0


@pytest.mark.slow
def test_two_trainings_into_one_folder_one_is_refused(tmp_path):
    args = [*TRAIN, "--set", "max_steps=100000", "--output", str(tmp_path / "run")]
    first = subprocess.Popen([sys.executable, "-m", "amodal", *args], stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        log = tmp_path / "run" / "log.csv"
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text().count("\n") > 1):  # the first is training
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.1)
        second = _amodal(*args)
        assert second.returncode == 2, second.stderr
        assert f"in use by pid {first.pid}" in second.stderr and second.stderr.count("\n") == 1, second.stderr
    finally:
        first.send_signal(signal.SIGTERM)  # it saves a checkpoint and stops
        first.wait(timeout=300)
    steps = [int(line.split(",")[0]) for line in log.read_text().splitlines()[1:]]
    assert steps == list(range(1, len(steps) + 1))  # one writer: no interleaved rows
