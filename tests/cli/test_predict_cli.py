"""python -m amodal predict: one photo, a folder, observed depth from files or a DAV2, clear errors;
inputs never overwritten, output sets whole after a full disk, a batch going on past bad photos."""
import errno

import numpy as np
import pytest
import torch
from PIL import Image

import amodal.export
from amodal.cli import main
from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2
from amodal.models.configs import TINY


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    AmodalDAV2(TINY).save_pretrained(root / "amodal")
    dav2 = DepthAnythingV2(TINY)
    with torch.no_grad():  # a random ReLU head outputs zeros; lift the bias so D_o varies
        dav2.head.scratch.output_conv2[2].bias.fill_(1.0)
    dav2.save_pretrained(root / "dav2")
    return root


def _photo(folder, name, h=30, w=40, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    mask = np.zeros((h, w), np.uint8)
    mask[8:22, 10:30] = 255
    return folder / f"{name}.png", mask


def test_one_photo_with_observed_depth_from_a_file(tmp_path, model_dir):
    photo, mask = _photo(tmp_path / "in", "cat")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    observed = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))
    np.save(tmp_path / "d_o.npy", observed)
    assert main(["predict", str(photo), "--mask", str(tmp_path / "mask.png"), "--model", str(model_dir / "amodal"),
                 "--observed-depth", str(tmp_path / "d_o.npy"), "--output", str(tmp_path / "out"), "--ply"]) == 0
    depth = np.load(tmp_path / "out" / "cat.npy")
    assert depth.shape == (30, 40)
    far = np.ones((30, 40), bool)
    far[7:23, 9:31] = False  # outside the object and its one-pixel seam: D_o unchanged
    np.testing.assert_allclose(depth[far], observed[far], atol=1e-6)
    # the set, and the settings a rerun compares with (a single photo: no summary)
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"cat.npy", "cat.png", "cat_color.png", "cat.ply",
                                                            "predict.json"}


def test_a_folder_with_a_base_model(tmp_path, model_dir):
    for k, name in enumerate(("a", "b")):
        _, mask = _photo(tmp_path / "photos", name, seed=k)
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(mask).save(tmp_path / "masks" / f"{name}.png")
    assert main(["predict", str(tmp_path / "photos"), "--mask", str(tmp_path / "masks"), "--model", str(model_dir / "amodal"),
                 "--base", str(model_dir / "dav2"), "--output", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.npy")) == ["a.npy", "b.npy"]


def test_clear_errors(tmp_path, model_dir, capsys):
    photo, mask = _photo(tmp_path / "in", "cat")
    Image.fromarray(mask[:, :20]).save(tmp_path / "small.png")
    common = ["--model", str(model_dir / "amodal"), "--base", str(model_dir / "dav2"), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:  # a missing input is refused when the arguments are parsed
        main(["predict", str(photo), "--mask", str(tmp_path / "none.png"), *common])
    assert exit_.value.code == 2
    assert "argument --mask: no such file or folder" in capsys.readouterr().err
    assert main(["predict", str(photo), "--mask", str(tmp_path / "small.png"), *common]) == 2
    assert "mask 20×30 but photo" in capsys.readouterr().err
    assert main(["predict", str(photo), "--mask", str(tmp_path / "small.png"), "--model", str(model_dir / "dav2"),
                 "--base", str(model_dir / "dav2"), "--output", str(tmp_path / "out")]) == 2
    assert "AmodalDAV2" in capsys.readouterr().err  # a DAV2 folder given as the amodal model
    assert main(["predict", str(tmp_path / "in"), "--mask", str(tmp_path / "small.png"), *common]) == 2
    assert "--mask must be a folder of masks when the photos are a folder" in capsys.readouterr().err


def _contents(folder):
    """Every file of ``folder`` (hidden ones too) by name → bytes, but the run's record and summary."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name not in ("predict.json", "summary.csv")}


def _predict(photos, masks, output, model_dir, *extra):
    return main(["predict", str(photos), "--mask", str(masks), "--model", str(model_dir / "amodal"),
                 "--base", str(model_dir / "dav2"), "--output", str(output), *extra])


def test_an_output_folder_that_is_or_holds_an_input_is_refused(tmp_path, model_dir, capsys):
    photo, mask = _photo(tmp_path / "photos", "a")
    Image.fromarray(mask).save(tmp_path / "photos" / "a_mask.png")
    (tmp_path / "masks").mkdir()
    Image.fromarray(mask).save(tmp_path / "masks" / "a.png")
    before = _contents(tmp_path / "photos")
    # the photo folder as output: a.png would become its depth map, and the next photo be read from that
    assert _predict(tmp_path / "photos", tmp_path / "masks", tmp_path / "photos", model_dir) == 2
    assert f"--output {tmp_path / 'photos'} is the photo folder" in capsys.readouterr().err
    # a single photo whose folder is the output (through another spelling of the path)
    assert _predict(photo, tmp_path / "masks" / "a.png", tmp_path / "masks" / ".." / "photos", model_dir) == 2
    assert f"holds the photo {photo}" in capsys.readouterr().err
    # the mask's folder as output
    assert _predict(photo, tmp_path / "masks" / "a.png", tmp_path / "masks", model_dir) == 2
    assert f"holds the mask {tmp_path / 'masks' / 'a.png'}" in capsys.readouterr().err
    assert _contents(tmp_path / "photos") == before
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a.png"]


def test_two_photos_that_would_share_output_names_are_refused(tmp_path, model_dir, capsys):
    (tmp_path / "masks").mkdir()
    for name in ("a", "b"):
        _, mask = _photo(tmp_path / "photos", name)
        Image.fromarray(mask).save(tmp_path / "masks" / f"{name}.png")
    Image.open(tmp_path / "photos" / "a.png").save(tmp_path / "photos" / "a.jpg")
    assert _predict(tmp_path / "photos", tmp_path / "masks", tmp_path / "out", model_dir) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'photos' / 'a.jpg'} and {tmp_path / 'photos' / 'a.png'} would both be written as a.png" in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "photos" / "a.jpg").unlink()
    # b's colour picture is b_color.png, which is also the depth map of a photo named b_color
    Image.open(tmp_path / "photos" / "b.png").save(tmp_path / "photos" / "b_color.png")
    assert _predict(tmp_path / "photos", tmp_path / "masks", tmp_path / "out", model_dir) == 2
    assert "would both be written as b_color.png" in capsys.readouterr().err


def test_a_full_disk_midway_through_a_set_leaves_the_previous_set_whole(tmp_path, model_dir, monkeypatch, capsys):
    photo, mask = _photo(tmp_path / "in", "cat")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    np.save(tmp_path / "d1.npy", np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1)))
    np.save(tmp_path / "d2.npy", np.tile(np.linspace(1, 0, 40, dtype=np.float32), (30, 1)))
    args = ["predict", str(photo), "--mask", str(tmp_path / "mask.png"), "--model", str(model_dir / "amodal"),
            "--output", str(out), "--ply", "--overwrite", "--observed-depth"]
    out.mkdir()
    (out / ".dog.incomplete").write_text("dog.png\n")  # a set an earlier run left half-renamed
    assert main(args + [str(tmp_path / "d1.npy")]) == 0
    assert "left half-renamed (dog)" in capsys.readouterr().err
    (out / ".dog.incomplete").unlink()
    first = _contents(out)
    assert sorted(first) == ["cat.npy", "cat.ply", "cat.png", "cat_color.png"]

    def full_disk(path, points, colours):  # the last file of the set: half of it, then no space
        path.write_text("ply\nformat ascii 1.0\n")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(amodal.export, "write_ply", full_disk)
    assert main(args + [str(tmp_path / "d2.npy")]) == 2
    assert "error: disk full" in capsys.readouterr().err
    assert _contents(out) == first  # no new .png beside the old .npy and .ply, no temporary files
    monkeypatch.undo()
    assert main(args + [str(tmp_path / "d2.npy")]) == 0  # with space again the set is replaced whole
    np.testing.assert_array_equal(np.load(out / "cat.npy")[:, 0], np.ones(30, np.float32))  # D_o far from the object
    assert _contents(out).keys() == first.keys()


def test_a_batch_skips_bad_photos_names_them_and_exits_2(tmp_path, model_dir, capsys):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    masks.mkdir()
    for k, name in enumerate(("a", "b", "c", "d", "e", "f")):
        _, mask = _photo(photos, name, seed=k)
        Image.fromarray(mask if name != "d" else mask[:, :20]).save(masks / f"{name}.png")
    data = (photos / "b.png").read_bytes()
    (photos / "b.png").write_bytes(data[: len(data) // 2])  # cut short
    (photos / "c.png").write_bytes(b"\x00garbage" * 10)  # not an image
    (masks / "e.png").unlink()  # no mask
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(masks / "f.png")  # an empty mask
    assert _predict(photos, masks, tmp_path / "out", model_dir) == 2
    captured = capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.npy")) == ["a.npy"]
    # the progress bar shares standard error; keep the report's lines
    lines = [part for line in captured.err.splitlines() for part in line.split("\r") if part.startswith(("skipped ", "error: "))]
    assert lines[0].startswith(f"skipped {photos / 'b.png'}: not a readable image (image file is truncated")
    assert lines[1].startswith(f"skipped {photos / 'c.png'}: not a readable image (no image format recognised")
    assert lines[2].startswith(f"skipped {photos / 'd.png'}: {masks / 'd.png'}: mask 20×30 but photo")
    assert lines[3].startswith(f"skipped {photos / 'e.png'}: no mask for e.png in {masks}")
    assert lines[4] == f"skipped {photos / 'f.png'}: amodal_mask is empty for 1 of 1 samples: nothing to predict"
    assert lines[5] == ("error: skipped 5 of 6 object(s) for bad input: "
                        + ", ".join(str(photos / f"{n}.png") for n in "bcdef"))
    assert "wrote 1 prediction(s)" in captured.out


def test_every_bad_input_of_a_single_photo_is_one_line_and_exit_2(tmp_path, model_dir, capsys):
    photo, mask = _photo(tmp_path / "in", "cat")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    cut = tmp_path / "in" / "cut.png"
    cut.write_bytes(photo.read_bytes()[:100])
    cases = [
        (cut, tmp_path / "mask.png", [], f"{cut}: not a readable image"),
        (photo, tmp_path / "mask.png", ["--max-pixels", "1000"], f"{photo}: 40×30 = 1,200 pixels, over the limit of 1,000"),
        (tmp_path / "mask.png", tmp_path / "in", [], "--mask must be a file when the photo is a file"),
    ]
    for image, mask_path, extra, message in cases:
        assert _predict(image, mask_path, tmp_path / "out", model_dir, *extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--device", "gpu", "unknown device 'gpu'"),
    ("--max-pixels", "0", "must be ≥ 1"),
    ("--output", "FILE", "is a file, not a folder"),
    ("--model", "MISSING", "no such file or folder"),
])
def test_options_are_checked_when_parsed(tmp_path, model_dir, capsys, option, value, message):
    photo, mask = _photo(tmp_path / "in", "cat")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    (tmp_path / "file").write_text("")
    value = {"FILE": str(tmp_path / "file"), "MISSING": str(tmp_path / "missing")}.get(value, value)
    arguments = {"--model": str(model_dir / "amodal"), "--base": str(model_dir / "dav2"), "--output": str(tmp_path / "out")}
    arguments[option] = value
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(photo), "--mask", str(tmp_path / "mask.png"), *[x for kv in arguments.items() for x in kv]])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and message in err


def test_model_and_base_by_hub_id_give_what_their_paths_give(tmp_path, model_dir, hub_cache, capsys):
    from hub_testdata import add_to_cache, folder_files

    add_to_cache(hub_cache, "zhyever/Amodal-Depth-Anything-DAV2", folder_files(model_dir / "amodal"))
    add_to_cache(hub_cache, "someone/tiny-dav2", folder_files(model_dir / "dav2"))
    photo, mask = _photo(tmp_path / "in", "cat")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    common = ["predict", str(photo), "--mask", str(tmp_path / "mask.png")]
    assert main([*common, "--model", str(model_dir / "amodal"), "--base", str(model_dir / "dav2"),
                 "--output", str(tmp_path / "paths")]) == 0
    assert main([*common, "--model", "zhyever/Amodal-Depth-Anything-DAV2", "--base", "someone/tiny-dav2",
                 "--output", str(tmp_path / "ids")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "ids" / "cat.npy"), np.load(tmp_path / "paths" / "cat.npy"))
    capsys.readouterr()
    assert main([*common, "--model", "zhyever/Amodal-Depth-Anything-DAV2", "--base", "depth-anything/Depth-Anything-V2-Large",
                 "--output", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Depth Anything V2 checkpoint depth-anything/Depth-Anything-V2-Large: ")
    assert "`hf download depth-anything/Depth-Anything-V2-Large depth_anything_v2_vitl.pth`" in err
    assert err.count("\n") == 1 and "Traceback" not in err and not (tmp_path / "missing").exists()


def _summary(folder):
    import csv

    with open(folder / "summary.csv", newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def test_one_set_per_object_from_mask_folders_and_annotation_files(tmp_path, model_dir):
    from amodal.adiw.sa1b import annotation_from_mask, write_sa1b

    photos, masks, visible = tmp_path / "photos", tmp_path / "masks", tmp_path / "visible"
    _photo(photos, "a", seed=1)
    _photo(photos, "b", seed=2)
    left, right = np.zeros((30, 40), np.uint8), np.zeros((30, 40), np.uint8)
    left[5:25, 2:18], right[5:25, 22:38] = 255, 255
    (masks / "a").mkdir(parents=True)
    Image.fromarray(left).save(masks / "a" / "left.png")
    Image.fromarray(right).save(masks / "a" / "right.png")
    tiny = np.zeros((30, 40), bool)
    tiny[0:2, 0:2] = True
    write_sa1b(masks / "b.json", {"image_id": 2, "width": 40, "height": 30, "file_name": "b.png"},
               [annotation_from_mask(left > 0, id=7), annotation_from_mask(tiny, id=8), annotation_from_mask(right > 0, id=9)])
    common = ["--model", str(model_dir / "amodal"), "--base", str(model_dir / "dav2"), "--min-area", "5"]
    assert main(["predict", str(photos), "--mask", str(masks), *common, "--output", str(tmp_path / "out")]) == 0
    names = sorted(p.stem for p in (tmp_path / "out").glob("*.npy"))
    assert names == ["a_left", "a_right", "b_7", "b_9"]  # b_8 has 4 pixels, under --min-area
    summary = _summary(tmp_path / "out")
    assert sorted(summary) == names and {row["status"] for row in summary.values()} == {"written"}
    assert summary["b_9"]["mask"] == f"{masks / 'b.json'}#9"
    # an annotation's object is predicted as the same mask given as an image
    Image.fromarray(right).save(tmp_path / "right.png")
    assert main(["predict", str(photos / "b.png"), "--mask", str(tmp_path / "right.png"), *common,
                 "--output", str(tmp_path / "single")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "single" / "b.npy"), np.load(tmp_path / "out" / "b_9.npy"))
    # visible masks follow the amodal masks' names; one missing is that object's skip, named
    (visible / "a").mkdir(parents=True)
    Image.fromarray(left).save(visible / "a" / "left.png")
    assert main(["predict", str(photos), "--mask", str(masks), *common, "--visible-mask", str(visible),
                 "--output", str(tmp_path / "with-visible")]) == 2
    summary = _summary(tmp_path / "with-visible")
    assert summary["a_left"]["status"] == "written"
    assert summary["a_right"]["status"] == "skipped" and "no visible mask for a_right" in summary["a_right"]["reason"]


def test_a_rerun_skips_what_is_written_and_refuses_other_settings(tmp_path, model_dir, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    for k, name in enumerate("abc"):
        _, mask = _photo(tmp_path / "photos", name, seed=k)
        Image.fromarray(mask).save(masks / f"{name}.png")
    out = tmp_path / "out"
    assert _predict(tmp_path / "photos", masks, out, model_dir) == 0
    first = _contents(out)
    (out / "b.npy").unlink()  # as if stopped before b's set was renamed into place
    (out / ".c.incomplete").write_text("c.png\n")  # or while c's was
    capsys.readouterr()
    assert _predict(tmp_path / "photos", masks, out, model_dir) == 0
    assert "wrote 2 prediction(s) to " in capsys.readouterr().out
    assert _contents(out) == first  # the same predictions, whole again
    assert {name: row["status"] for name, row in _summary(out).items()} == {
        "a": "already written", "b": "written", "c": "written"}
    # other settings: refused before anything is written, unless --overwrite
    assert _predict(tmp_path / "photos", masks, out, model_dir, "--crop", "0.5") == 2
    assert "holds predictions made with other settings (crop: 0.25 → 0.5)" in capsys.readouterr().err
    assert _contents(out) == first
    assert _predict(tmp_path / "photos", masks, out, model_dir, "--crop", "0.5", "--overwrite") == 0
    assert {row["status"] for row in _summary(out).values()} == {"written"}
    assert _contents(out)["a.npy"] != first["a.npy"]


def test_crop_and_size_are_those_of_the_library(tmp_path, model_dir):
    from amodal.inference import predict
    from amodal.utils.images import read_image

    photo, mask = _photo(tmp_path / "in", "cat", h=60, w=90)
    Image.fromarray(mask).save(tmp_path / "mask.png")
    observed = np.tile(np.linspace(0, 1, 90, dtype=np.float32), (60, 1))
    np.save(tmp_path / "d_o.npy", observed)
    model = AmodalDAV2.from_pretrained(model_dir / "amodal").eval()
    rgb = read_image(photo)
    for crop, size, expected in (("whole", "28", dict(crop=None, size=28)), ("0.1", "42", dict(crop=0.1, size=42))):
        out = tmp_path / f"out-{crop}"
        assert main(["predict", str(photo), "--mask", str(tmp_path / "mask.png"), "--model", str(model_dir / "amodal"),
                     "--observed-depth", str(tmp_path / "d_o.npy"), "--crop", crop, "--size", size,
                     "--output", str(out)]) == 0
        np.testing.assert_array_equal(np.load(out / "cat.npy"), predict(rgb, mask > 0, model, observed_depth=observed, **expected))


def test_toy_base_depth_is_accepted_and_labelled(tmp_path, model_dir, capsys):
    photo, mask = _photo(tmp_path / "in", "cat", h=150, w=320)
    Image.fromarray(mask).save(tmp_path / "mask.png")
    rows = np.repeat(np.linspace(0, 1, 150, dtype=np.float32)[:, None], 320, axis=1)  # what the row prior gives
    np.save(tmp_path / "rows.npy", rows)
    common = ["predict", str(photo), "--mask", str(tmp_path / "mask.png"), "--model", str(model_dir / "amodal")]
    assert main([*common, "--base", "row-prior", "--output", str(tmp_path / "toy")]) == 0
    assert "note: D_o: toy row prior" in capsys.readouterr().err
    assert main([*common, "--observed-depth", str(tmp_path / "rows.npy"), "--output", str(tmp_path / "file")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "toy" / "cat.npy"), np.load(tmp_path / "file" / "cat.npy"))
    toy = np.asarray(Image.open(tmp_path / "toy" / "cat_color.png"))
    plain = np.asarray(Image.open(tmp_path / "file" / "cat_color.png"))
    changed = np.nonzero((toy != plain).any(axis=2))[0]
    assert changed.size and changed.min() > 100  # a caption along the bottom edge, nothing else
    with pytest.raises(SystemExit):
        main([*common, "--base", "row-prior", "--crop", "-1", "--output", str(tmp_path / "bad")])
    assert "a margin ≥ 0 (such as 0.25) or 'whole'" in capsys.readouterr().err


def test_points_run_the_chain_and_write_every_stage(tmp_path, model_dir, capsys):
    from amodal.app.wild_outputs import HIDDEN_COLOUR
    from amodal.export import read_ply

    size = 64
    image = np.full((size, size, 3), 120, np.uint8)
    image[16:48, 16:48] = (220, 40, 40)  # a red square
    image[:, 28:36] = (20, 20, 20)  # behind a dark bar
    (tmp_path / "in").mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "box.png")
    corners = ["12,12", "52,12", "52,52", "12,52"]  # a rough polygon around the square, as clicked
    common = ["predict", str(tmp_path / "in" / "box.png"), "--model", str(model_dir / "amodal"), "--base", "row-prior"]
    assert main([*common, "--points", *corners, "--amodal-mask", "hull", "--output", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "visible mask: random walker" in captured.out and "note: D_o: toy row prior" in captured.err
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"box_visible.png", "box_amodal.png", "box_observed.png", "box_raw.npy", "box.png", "box.npy",
                       "box_color.png", "box_stages.png", "box.ply"}
    visible = np.asarray(Image.open(tmp_path / "out" / "box_visible.png")) > 0
    amodal = np.asarray(Image.open(tmp_path / "out" / "box_amodal.png")) > 0
    assert visible.any() and (amodal >= visible).all()
    points, colours = read_ply(tmp_path / "out" / "box.ply")
    assert len(points) == amodal.sum()
    hidden = (colours == HIDDEN_COLOUR).all(axis=1)
    assert hidden.sum() == (amodal & ~visible).sum()  # the hidden part in its own colour, the rest the photo's
    # a given amodal mask, and the errors
    Image.fromarray((amodal * 255).astype(np.uint8)).save(tmp_path / "amodal.png")
    assert main([*common, "--points", *corners, "--amodal-mask", str(tmp_path / "amodal.png"),
                 "--output", str(tmp_path / "given")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "given" / "box_amodal.png")) > 0, amodal)
    # the shipped mask completer instead of the hull
    assert main([*common, "--points", *corners, "--amodal-mask", "completer", "--output", str(tmp_path / "learned")]) == 0
    learned = np.asarray(Image.open(tmp_path / "learned" / "box_amodal.png")) > 0
    assert learned.any() and (learned >= (np.asarray(Image.open(tmp_path / "learned" / "box_visible.png")) > 0)).all()
    capsys.readouterr()
    assert main([*common, "--points", "12,12", "70,12", "52,52", "--output", str(tmp_path / "bad")]) == 2
    assert "point(s) 70,12 lie outside the 64×64 photo" in capsys.readouterr().err
    assert main([*common, "--points", "12,12", "--output", str(tmp_path / "bad")]) == 2
    assert "give at least 3" in capsys.readouterr().err
    assert main([*common, "--mask", str(tmp_path / "amodal.png"), "--points", *corners, "--output", str(tmp_path / "bad")]) == 2
    assert "one of the two" in capsys.readouterr().err
    assert main([*common, "--mask", str(tmp_path / "amodal.png"), "--amodal-mask", "hull", "--output", str(tmp_path / "bad")]) == 2
    assert "--amodal-mask only go with --points" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--points", "12;12", "--output", str(tmp_path / "bad")])
    assert "a point is X,Y in pixels" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
