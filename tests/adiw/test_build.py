"""Tests for amodal.adiw.build and amodal.adiw.shards: a tiny build, bad sources, failures
retried, parallel = serial = two ranks, one model per process, one decode per photo, and
resume after SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from adiw_testdata import BrightnessDepth, write_photo, write_sources
from amodal.adiw.build import build, BuildConfig
from amodal.adiw.shards import manifest_records, SourceError
from amodal.adiw.sources import find_sources, load_source
from amodal.adiw.sample import read_sample
from amodal.adiw.shards import distributed_rank, worker_devices

CONFIG = BuildConfig(samples_per_image=3, sources_per_shard=2)


def dataset_content(output: Path) -> dict:
    """Every sample of a build: id → (record without timings, arrays)."""
    out = {}
    for shard, record in manifest_records(output):
        if record["type"] != "sample":
            continue
        assert record["id"] not in out, f"sample {record['id']} listed twice"
        s = read_sample(shard, record)
        out[record["id"]] = (json.dumps(record, sort_keys=True), s.image, s.observed_depth, s.target_depth, s.amodal_mask, s.visible_mask)
    return out


def assert_same(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key][0] == b[key][0]
        for x, y in zip(a[key][1:], b[key][1:]):
            assert np.array_equal(x, y), key


def test_tiny_build(tmp_path):
    write_sources(tmp_path / "src", 3)
    sources = find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b")
    assert [s.name for s in sources] == ["img_000", "img_001", "img_002"]
    report = build(sources, tmp_path / "out", BrightnessDepth(), CONFIG, progress=False)
    content = dataset_content(tmp_path / "out")
    assert report["samples"] == len(content) > 0
    assert report["sources"] == {"ok": 3}
    assert report["rejected_objects"].get("touches_border") == 3  # the border blob of each photo
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["build.json", "report.json", "shard-00000", "shard-00001"]
    for _, image, d_o, label, amodal, visible in content.values():
        assert label.min() >= 0 and label.max() <= 1
        assert (visible <= amodal).all() and (amodal & ~visible).any()
        # outside the amodal mask the label is the observed depth
        assert np.array_equal(label[~amodal], d_o[~amodal])
    buckets = {json.loads(v[0])["bucket"] for v in content.values()}
    assert len(buckets) >= 2  # buckets are cycled


def test_bad_sources_are_skipped_with_reasons(tmp_path):
    src = tmp_path / "src"
    write_sources(src, 2)
    write_photo(src, "corrupt_json", 5)
    (src / "sa1b" / "corrupt_json.json").write_text("{not json")
    write_photo(src, "corrupt_rle", 6)
    data = json.loads((src / "sa1b" / "corrupt_rle.json").read_text())
    data["annotations"][0]["segmentation"]["counts"] = "\x7f\x7f"
    (src / "sa1b" / "corrupt_rle.json").write_text(json.dumps(data))
    write_photo(src, "broken_image", 7)
    (src / "images" / "broken_image.png").write_bytes(b"not a png")
    write_photo(src, "no_json", 8)
    (src / "sa1b" / "no_json.json").unlink()
    write_photo(src, "no_image", 9)
    (src / "images" / "no_image.png").unlink()
    write_photo(src, "wrong_size", 10)
    data = json.loads((src / "sa1b" / "wrong_size.json").read_text())
    data["image"]["height"] = 40
    (src / "sa1b" / "wrong_size.json").write_text(json.dumps(data))
    report = build(find_sources(src / "images", src / "sa1b"), tmp_path / "out", BrightnessDepth(), CONFIG, progress=False)
    assert report["skipped_sources"] == {
        "corrupt_annotations": 2,  # invalid JSON; a size that disagrees with the masks
        "corrupt_rle": 1,
        "unreadable_image": 1,
        "missing_annotations": 1,
        "missing_image": 1,
    }
    assert report["sources"] == {"ok": 2, "skipped": 6}
    content = dataset_content(tmp_path / "out")
    assert content and all(key.startswith("img_") for key in content)
    assert not list((tmp_path / "out").rglob(".*.tmp"))


def test_a_photo_over_the_pixel_limit_is_skipped_until_the_limit_is_raised(tmp_path):
    write_sources(tmp_path / "src", 3)  # 48×64 = 3072 pixels each
    sources = find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b")
    report = build(sources, tmp_path / "out", BrightnessDepth(), CONFIG, progress=False, max_pixels=3071)
    assert report["skipped_sources"] == {"unreadable_image": 3}
    with pytest.raises(SourceError, match="64×48 = 3,072 pixels, over the limit of 3,071"):
        load_source(sources[0], max_pixels=3071)
    # not a setting of the dataset: the same folder resumes with a raised limit
    report = build(sources, tmp_path / "out", BrightnessDepth(), CONFIG, progress=False, retry_errors=True)
    assert report["sources"] == {"ok": 3}
    assert_same(dataset_content(tmp_path / "out"), _fresh_build(tmp_path / "fresh", sources))


def _fresh_build(output, sources):
    build(sources, output, BrightnessDepth(), CONFIG, progress=False)
    return dataset_content(output)


def test_size_mismatch_between_json_and_image(tmp_path):
    src = tmp_path / "src"
    write_photo(src, "a", 0)
    data = json.loads((src / "sa1b" / "a.json").read_text())
    from PIL import Image

    Image.fromarray(np.zeros((50, 64, 3), np.uint8)).save(src / "images" / "a.png")
    (source,) = find_sources(src / "images", src / "sa1b")
    with pytest.raises(SourceError) as error:
        load_source(source)
    assert error.value.reason == "size_mismatch" and data["image"]["height"] == 48


def test_resize_keeps_masks_binary(tmp_path):
    write_photo(tmp_path, "a", 0)
    (source,) = find_sources(tmp_path / "images", tmp_path / "sa1b")
    image, masks = load_source(source, size=32)
    assert image.shape == (24, 32, 3) and all(m.shape == (24, 32) and m.dtype == bool for _, m in masks)


@pytest.mark.parametrize("size", [32, 100, 257])
def test_resize_equals_skimage_on_the_whole_image_and_each_mask(tmp_path, size):
    # Reference: skimage's resize called on the (H, W, 3) image and on every mask alone.
    from skimage.transform import resize

    write_photo(tmp_path, "a", 0, shape=(61, 83))
    (source,) = find_sources(tmp_path / "images", tmp_path / "sa1b")
    image, masks = load_source(source)
    small_image, small_masks = load_source(source, size)
    scale = size / 83
    shape = (round(61 * scale), size)
    expected = np.clip(np.rint(resize(image, shape, order=1, anti_aliasing=scale < 1, preserve_range=True)), 0, 255).astype(np.uint8)
    assert np.array_equal(small_image, expected)
    for (_, mask), (_, small) in zip(masks, small_masks):
        assert np.array_equal(small, resize(mask.astype(np.float32), shape, order=0, anti_aliasing=False) > 0.5)


def test_other_settings_are_refused(tmp_path):
    write_sources(tmp_path / "src", 1)
    sources = find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b")
    build(sources, tmp_path / "out", BrightnessDepth(), CONFIG, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        build(sources, tmp_path / "out", BrightnessDepth(), BuildConfig(seed=1), progress=False)


class FlakyDepth(BrightnessDepth):
    """Fails once, on its ``fail_on``-th call, as a CUDA out-of-memory would; then works."""

    def __init__(self, fail_on: int):
        self.calls, self.fail_on = 0, fail_on

    def predict(self, images):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().predict(images)


def test_a_passing_error_is_retried_on_resume(tmp_path):
    write_sources(tmp_path / "src", 3)
    sources = find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b")
    build(sources, tmp_path / "reference", BrightnessDepth(), CONFIG, progress=False)
    flaky = FlakyDepth(fail_on=3)  # the second source's background depth
    with pytest.warns(RuntimeWarning, match="img_001 failed"):
        report = build(sources, tmp_path / "out", flaky, CONFIG, progress=False)
    assert report["sources"] == {"ok": 2, "failed": 1} and report["sources_pending"] == 1
    assert report["failed_sources"] == {"img_001": "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"}
    assert [f["source"] for f in report["this_run"]["failed"]] == ["img_001"]

    report = build(sources, tmp_path / "out", flaky, CONFIG, progress=False)
    assert report["this_run"]["sources_processed"] == 1 and report["this_run"]["failed"] == []
    assert report["sources"] == {"ok": 3} and report["failed_sources"] == {} and report["sources_pending"] == 0
    assert_same(dataset_content(tmp_path / "reference"), dataset_content(tmp_path / "out"))
    assert sum(r["type"] == "source" for _, r in manifest_records(tmp_path / "out")) == 3  # the failed line was replaced


def test_bad_input_stays_skipped_unless_retry_errors(tmp_path):
    # Without occluders from the neighbour: a photo that was bad when its neighbour was
    # built changed that neighbour's samples, and a retry rebuilds only the bad one.
    config = BuildConfig(samples_per_image=3, sources_per_shard=2, cross_image_occluders=False)
    write_sources(tmp_path / "src", 3)
    sources = find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b")
    build(sources, tmp_path / "reference", BrightnessDepth(), config, progress=False)
    annotations = tmp_path / "src" / "sa1b" / "img_002.json"
    good = annotations.read_text()
    annotations.write_text(good[: len(good) // 2])  # a truncated download
    report = build(sources, tmp_path / "out", BrightnessDepth(), config, progress=False)
    assert report["skipped_sources"] == {"corrupt_annotations": 1}
    annotations.write_text(good)  # repaired
    report = build(sources, tmp_path / "out", BrightnessDepth(), config, progress=False)
    assert report["this_run"]["sources_processed"] == 0 and report["skipped_sources"] == {"corrupt_annotations": 1}
    report = build(sources, tmp_path / "out", BrightnessDepth(), config, progress=False, retry_errors=True)
    assert report["this_run"]["sources_processed"] == 1  # only the skipped one; "ok" sources are kept
    assert report["sources"] == {"ok": 3} and report["skipped_sources"] == {}
    assert_same(dataset_content(tmp_path / "reference"), dataset_content(tmp_path / "out"))


@dataclass
class RecordingFactory:
    """A depth "model" factory that leaves one file per call: which process, which device."""

    folder: str

    def __call__(self, device=None):
        (Path(self.folder) / f"{os.getpid()}-{time.perf_counter_ns()}").write_text(str(device))
        return BrightnessDepth()

    def calls(self) -> list[tuple[str, str]]:
        return [(p.name.split("-")[0], p.read_text()) for p in Path(self.folder).iterdir()]


@pytest.mark.slow
def test_two_workers_equal_one_with_one_depth_model_each(tmp_path, monkeypatch):
    # The model is made once per process (not once per shard), and with device "cuda"
    # the workers go to different GPUs.
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # two GPUs "visible"
    write_sources(tmp_path / "src", 6)
    sources = find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b")
    factory = RecordingFactory(str(tmp_path / "calls_serial"))
    Path(factory.folder).mkdir()
    report = build(sources, tmp_path / "serial", factory, CONFIG, progress=False, device="cuda")
    assert report["this_run"]["sources_processed"] == 6  # 3 shards
    assert [device for _, device in factory.calls()] == ["cuda:0"]
    build(sources, tmp_path / "serial", factory, CONFIG, progress=False, device="cuda")
    assert len(factory.calls()) == 1  # nothing left to do: no model made

    factory = RecordingFactory(str(tmp_path / "calls_parallel"))
    Path(factory.folder).mkdir()
    report = build(sources, tmp_path / "parallel", factory, CONFIG, workers=2, progress=False, device="cuda")
    assert report["this_run"]["workers"] == 2
    calls = factory.calls()
    processes = [pid for pid, _ in calls]
    assert 1 <= len(calls) <= 2 and len(set(processes)) == len(processes)  # at most one model per worker
    assert len({device for _, device in calls}) == len(calls) and {d for _, d in calls} <= {"cuda:0", "cuda:1"}
    assert_same(dataset_content(tmp_path / "serial"), dataset_content(tmp_path / "parallel"))


def test_worker_devices(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert worker_devices("cuda", 3) == ["cuda:0", "cuda:1", "cuda:0"]
    # two processes of one machine (torchrun --nproc_per_node 2), one worker each
    assert worker_devices("cuda", 1, local_rank=1) == ["cuda:1"]
    assert worker_devices("cuda:1", 2) == ["cuda:1", "cuda:1"]  # a device named by the user is kept
    assert worker_devices("cpu", 2) == ["cpu", "cpu"] and worker_devices(None, 1) == [None]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert worker_devices("cuda", 2) == ["cuda", "cuda"]


def test_each_photo_is_decoded_once(tmp_path, monkeypatch):
    # Each photo is also its neighbour's occluder source; it must not be read twice.
    import amodal.adiw.sources as build_module

    write_sources(tmp_path / "src", 4)
    sources = find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b")
    decoded = []
    real = build_module.load_source

    def counting(source, size=None, **options):
        decoded.append(source.name)
        return real(source, size, **options)

    monkeypatch.setattr(build_module, "load_source", counting)
    build(sources, tmp_path / "out", BrightnessDepth(), CONFIG, progress=False)
    # Once each (it was twice); the first photo is also the last one's neighbour (the
    # order is cyclic), long after its own turn.
    assert Counter(decoded) == {"img_000": 2, "img_001": 1, "img_002": 1, "img_003": 1}


def test_distributed_rank_from_arguments_torchrun_and_slurm():
    assert distributed_rank(environ={}) == (0, 1, 0)
    assert distributed_rank(1, 4, environ={"RANK": "3", "WORLD_SIZE": "8"}) == (1, 4, 0)
    assert distributed_rank(environ={"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == (3, 8, 1)
    assert distributed_rank(environ={"SLURM_PROCID": "2", "SLURM_NTASKS": "3", "SLURM_LOCALID": "0"}) == (2, 3, 0)
    with pytest.raises(ValueError, match="both"):
        distributed_rank(rank=1, environ={})
    with pytest.raises(ValueError, match="rank must be"):
        distributed_rank(2, 2, environ={})


RANK_BUILD = """
import sys
sys.path.insert(0, {tests!r})
from adiw_testdata import BrightnessDepth
from amodal.adiw.build import build, BuildConfig
from amodal.adiw.sources import find_sources

config = BuildConfig(samples_per_image=3, sources_per_shard=2)
report = build(find_sources({images!r}, {annotations!r}), {output!r}, BrightnessDepth(), config, progress=False)
assert report["this_run"]["world_size"] == 2, report["this_run"]
"""


@pytest.mark.slow
def test_two_ranks_build_one_dataset(tmp_path):
    # Two machines (here: two processes started at once, as torchrun would) build into
    # one folder: disjoint shards, one build.json, and the union is the one-machine build.
    write_sources(tmp_path / "src", 6)
    images, annotations = str(tmp_path / "src" / "images"), str(tmp_path / "src" / "sa1b")
    sources = find_sources(images, annotations)
    build(sources, tmp_path / "reference", BrightnessDepth(), CONFIG, progress=False)
    script = RANK_BUILD.format(tests=str(Path(__file__).parents[1]), images=images, annotations=annotations, output=str(tmp_path / "ranks"))
    ranks = [
        subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2"})
        for r in range(2)
    ]
    assert [p.wait(timeout=120) for p in ranks] == [0, 0]
    assert_same(dataset_content(tmp_path / "reference"), dataset_content(tmp_path / "ranks"))
    assert (tmp_path / "ranks" / "build.json").read_text() == (tmp_path / "reference" / "build.json").read_text()
    report = json.loads((tmp_path / "ranks" / "report.json").read_text())
    assert report["sources_pending"] in (0, 2)  # the second rank to finish sees everything done
    report = build(sources, tmp_path / "ranks", BrightnessDepth(), CONFIG, progress=False)  # one machine, whole folder
    assert report["this_run"]["sources_processed"] == 0 and report["sources"] == {"ok": 6} and report["sources_pending"] == 0
    assert not list((tmp_path / "ranks").rglob(".*.tmp"))


class Killed(BaseException):
    """Stands for SIGKILL inside the process: nothing catches it."""


def test_crash_between_sample_files_and_commit_resumes_exactly(tmp_path, monkeypatch):
    # SIGKILL lands wherever it lands; this test puts the crash at the worst place on
    # purpose: a source's first sample file is on disk (and a temporary file half
    # written) but its manifest lines are not.
    import amodal.adiw.shards as build_module

    write_sources(tmp_path / "src", 3)
    sources = find_sources(tmp_path / "src" / "images", tmp_path / "src" / "sa1b")
    build(sources, tmp_path / "reference", BrightnessDepth(), CONFIG, progress=False)
    real = build_module.write_sample
    calls = []

    def crashing(folder, sample):
        calls.append(sample.sample_id)
        if sum(c.startswith("img_001") for c in calls) == 2:
            (Path(folder) / f".{sample.sample_id}.png.tmp").write_bytes(b"half")
            raise Killed
        return real(folder, sample)

    monkeypatch.setattr(build_module, "write_sample", crashing)
    with pytest.raises(Killed):
        build(sources, tmp_path / "crashed", BrightnessDepth(), CONFIG, progress=False)
    monkeypatch.setattr(build_module, "write_sample", real)
    committed = {r["name"] for _, r in manifest_records(tmp_path / "crashed") if r["type"] == "source"}
    assert committed == {"img_000"}
    assert list((tmp_path / "crashed").glob("shard-*/img_001-*.png"))  # written, not committed

    report = build(sources, tmp_path / "crashed", BrightnessDepth(), CONFIG, progress=False)
    assert report["this_run"]["sources_processed"] == 2
    assert_same(dataset_content(tmp_path / "reference"), dataset_content(tmp_path / "crashed"))
    assert not list((tmp_path / "crashed").rglob(".*.tmp"))


KILLED_BUILD = """
import sys, time
sys.path.insert(0, {tests!r})
from adiw_testdata import BrightnessDepth
from amodal.adiw.build import build, BuildConfig
from amodal.adiw.sources import find_sources

class SlowDepth(BrightnessDepth):
    def predict(self, images):
        time.sleep(0.1)
        return super().predict(images)

config = BuildConfig(samples_per_image=3, sources_per_shard=2)
build(find_sources({images!r}, {annotations!r}), {output!r}, SlowDepth(), config, progress=False)
"""


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_build(tmp_path):
    write_sources(tmp_path / "src", 6)
    images, annotations = str(tmp_path / "src" / "images"), str(tmp_path / "src" / "sa1b")
    sources = find_sources(images, annotations)
    build(sources, tmp_path / "reference", BrightnessDepth(), CONFIG, progress=False)
    reference = dataset_content(tmp_path / "reference")

    script = KILLED_BUILD.format(tests=str(Path(__file__).parents[1]), images=images, annotations=annotations, output=str(tmp_path / "killed"))
    process = subprocess.Popen([sys.executable, "-c", script])
    done = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        done = sum(r["type"] == "source" for _, r in manifest_records(tmp_path / "killed"))
        if done >= 2:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    done = sum(r["type"] == "source" for _, r in manifest_records(tmp_path / "killed"))
    assert 2 <= done < 6, "the build must be killed in the middle"

    report = build(sources, tmp_path / "killed", BrightnessDepth(), CONFIG, progress=False)
    assert report["this_run"]["sources_processed"] == 6 - done
    assert_same(reference, dataset_content(tmp_path / "killed"))
    # the files on disk are exactly those the manifests name
    named = {f for shard, r in manifest_records(tmp_path / "killed") if r["type"] == "sample" for f in r["files"].values()}
    on_disk = {p.name for p in (tmp_path / "killed").glob("shard-*/*") if p.name != "manifest.jsonl"}
    assert on_disk == named


def test_paper_label_mode_builds_512_samples_from_the_official_recipe(tmp_path):
    from adiw_testdata import BrightnessDepth, write_sources
    from amodal.adiw.build import build, BuildConfig
    from amodal.adiw.shards import manifest_records
    from amodal.adiw.sources import find_sources
    from amodal.adiw.sample import read_sample

    write_sources(tmp_path / "src", 2)
    report = build(find_sources(tmp_path / "src/images", tmp_path / "src/sa1b"), tmp_path / "out", BrightnessDepth(),
                   BuildConfig(samples_per_image=2, label_mode="paper"), progress=False)
    assert report["samples"] > 0
    for shard, record in manifest_records(tmp_path / "out"):
        if record["type"] == "sample":
            sample = read_sample(shard, record)
            assert sample.target_depth.shape == (512, 512) and record["provenance"]["label_mode"] == "paper"
            assert 0 <= sample.target_depth.min() and sample.target_depth.max() <= 1


def test_a_build_made_before_label_mode_existed_resumes(tmp_path):
    import json

    from adiw_testdata import BrightnessDepth, write_sources
    from amodal.adiw.build import build, BuildConfig
    from amodal.adiw.sources import find_sources

    write_sources(tmp_path / "src", 1)
    sources = find_sources(tmp_path / "src/images", tmp_path / "src/sa1b")
    build(sources, tmp_path / "out", BrightnessDepth(), BuildConfig(samples_per_image=1), progress=False)
    plan = json.loads((tmp_path / "out" / "build.json").read_text())
    del plan["config"]["label_mode"]
    (tmp_path / "out" / "build.json").write_text(json.dumps(plan))
    resumed = build(sources, tmp_path / "out", BrightnessDepth(), BuildConfig(samples_per_image=1), progress=False)
    assert resumed["this_run"]["sources_processed"] == 0  # accepted as the same build: nothing left to do
    with pytest.raises(ValueError, match="other settings"):
        build(sources, tmp_path / "out", BrightnessDepth(), BuildConfig(samples_per_image=1, label_mode="paper"), progress=False)
