"""amodal.harness.rehearsal: the table of wall time and peak memory, the parameters each notebook
is given, and the SA-1B folder made of the sample photos."""
import json

import nbformat
import pytest

from amodal.adiw.official import OfficialAdiwDataset, read_split
from amodal.adiw.sa1b import read_sa1b
from amodal.harness.rehearsal import (
    Row,
    merge_rows,
    notebook_parameters,
    table,
    unread_weights,
    weights_read,
    write_adiw_folder,
    write_sa1b_folder,
)
from amodal.utils.paths import repo_root


def test_the_table_has_each_step_its_time_and_peak_rss_and_a_total():
    rows = [Row("stand-ins and data", 75.25, 3 * 2**30, True),
            Row("05_training", 61.0, int(1.5 * 2**30), False, "AssertionError: x")]
    rows[1].weights = ["depth-anything/Depth-Anything-V2-Small"]
    assert table(rows).splitlines() == [
        "| step | wall time | peak RSS (kernel tree) | status | weights read |",
        "|---|---:|---:|---|---|",
        "| stand-ins and data | 1 min 15.2 s | 3.0 GiB | ok |  |",
        "| 05_training | 1 min 01.0 s | 1.5 GiB | FAILED: AssertionError: x | `depth-anything/Depth-Anything-V2-Small` |",
        "| **total** | **2 min 16.2 s** | **3.0 GiB** (largest) | 1/2 ok | |",
    ]
    assert table(rows, total=59.94).splitlines()[-1].startswith("| **total** | **59.9 s** |")


def test_the_table_names_weights_inside_the_checkout_relative_to_its_root(tmp_path):
    row = Row("04_amodal_depthfm", 1.0, 2**30, True)
    row.weights = [str(repo_root() / "runs" / "rehearse" / "weights" / "depthfm-v1.ckpt"), str(tmp_path / "vae"),
                   "stable-diffusion-v1-5/stable-diffusion-v1-5"]
    line = table([row]).splitlines()[2]
    assert line.endswith(f"| `runs/rehearse/weights/depthfm-v1.ckpt`, `{tmp_path / 'vae'}`, "
                         "`stable-diffusion-v1-5/stable-diffusion-v1-5` |")


def _notebook(path, names):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    cell = nbformat.v4.new_code_cell("\n".join(f"{n} = None" for n in names))
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(nb, path)
    return path


def test_each_notebook_gets_the_parameters_its_cell_names_and_05_the_small_dav2(tmp_path):
    pool = {"DAV2_CHECKPOINT": "depth-anything/Depth-Anything-V2-Large", "DAV2_S_CHECKPOINT": "depth-anything/Depth-Anything-V2-Small",
            "ADIW_DIR": "/data/adiw", "VAE": None}
    names = ["DAV2_CHECKPOINT", "ADIW_DIR", "VAE", "SEED"]
    assert notebook_parameters(_notebook(tmp_path / "03_amodal_dav2.ipynb", names), pool) == \
        {"DAV2_CHECKPOINT": "depth-anything/Depth-Anything-V2-Large", "ADIW_DIR": "/data/adiw"}
    assert notebook_parameters(_notebook(tmp_path / "05_training.ipynb", names), pool)["DAV2_CHECKPOINT"] == \
        "depth-anything/Depth-Anything-V2-Small"   # its recipe fine-tunes ViT-S


def test_the_sample_photos_become_an_sa1b_folder(tmp_path):
    folder = write_sa1b_folder(tmp_path / "sa1b")
    jsons = sorted(folder.glob("sa_*.json"))
    assert jsons and len(jsons) == len(list(folder.glob("sa_*.jpg")))
    for path in jsons:
        record = json.loads(path.read_text())
        k = int(path.stem.split("_")[1])
        assert record["image"]["image_id"] == k and record["image"]["file_name"] == f"sa_{k}.jpg"
        assert read_sa1b(path)["annotations"] and (folder / record["image"]["file_name"]).is_file()


@pytest.mark.slow  # builds ADIW samples from the sample photos
def test_the_adiw_standin_is_in_the_official_layout_with_its_split_lists(tmp_path):
    lists = write_adiw_folder(tmp_path / "adiw", tmp_path / "shards", samples_per_image=1)
    train, val = read_split(lists["train"]), read_split(lists["val"])
    assert len(val) == 3 and train and not set(train) & set(val)
    items = OfficialAdiwDataset(lists["root"], lists["val"], size=None)
    assert [items[i]["id"] for i in range(len(items))] == val
    assert items[0]["image"].shape[-2:] == (512, 512)   # the paper's label recipe stores 512²


def test_weights_given_to_a_notebook_and_not_read_are_named(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"inputs": {"weights": {
        "Amodal-DAV2": {"spec": "zhyever/Amodal-Depth-Anything-DAV2", "files": [{"path": "/hub/x", "bytes": 1}]},
        "DAV2": {"spec": "depth-anything/Depth-Anything-V2-Large", "files": [], "note": "not read in this run"}}}}))
    read = weights_read(metrics)
    assert read == ["zhyever/Amodal-Depth-Anything-DAV2"] and weights_read(None) == [] == weights_read(tmp_path / "none")
    weights = {"AMODAL_DAV2_CHECKPOINT": "zhyever/Amodal-Depth-Anything-DAV2",
               "DAV2_CHECKPOINT": "depth-anything/Depth-Anything-V2-Large", "VAE": "org/vae"}
    given = {"AMODAL_DAV2_CHECKPOINT": "zhyever/Amodal-Depth-Anything-DAV2",
             "DAV2_CHECKPOINT": "depth-anything/Depth-Anything-V2-Large", "ADIW_DIR": "/data"}
    assert unread_weights(given, weights, read) == ["DAV2_CHECKPOINT"]
    assert unread_weights(given, weights, read + ["depth-anything/Depth-Anything-V2-Large"]) == []


def test_a_rerun_of_some_notebooks_replaces_their_rows_and_keeps_the_others():
    earlier = [Row("stand-ins and data", 300.0, 2**30, True), Row("00_quickstart", 60.0, 2**30, True),
               Row("01_adiw_construction", 100.0, 2**30, False, "IndexError")]
    rerun = [Row("stand-ins and data", 30.0, 2**29, True), Row("01_adiw_construction", 120.0, 2**31, True)]
    merged = merge_rows(earlier, rerun)
    assert [(r.name, r.seconds, r.ok) for r in merged] == [
        ("stand-ins and data", 300.0, True), ("00_quickstart", 60.0, True), ("01_adiw_construction", 120.0, True)]
