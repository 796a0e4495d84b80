"""python -m amodal predict: one photo, a folder, observed depth from files or a DAV2, clear errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from amodal.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2
    from amodal.models.configs import TINY

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
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"cat.npy", "cat.png", "cat_color.png", "cat.ply"}


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
    assert main(["predict", str(photo), "--mask", str(tmp_path / "none.png"), *common]) == 2
    assert "--mask: no such file" in capsys.readouterr().err
    assert main(["predict", str(photo), "--mask", str(tmp_path / "small.png"), *common]) == 2
    assert "mask 20×30 but photo" in capsys.readouterr().err
    assert main(["predict", str(photo), "--mask", str(tmp_path / "small.png"), "--model", str(model_dir / "dav2"),
                 "--base", str(model_dir / "dav2"), "--output", str(tmp_path / "out")]) == 2
    assert "AmodalDAV2" in capsys.readouterr().err  # a DAV2 folder given as the amodal model
    assert main(["predict", str(tmp_path / "in"), "--mask", str(tmp_path / "nomasks"), *common]) == 2
    assert "folder of masks" in capsys.readouterr().err
