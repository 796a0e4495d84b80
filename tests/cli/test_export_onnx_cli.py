"""python -m amodal export-onnx, then predict with the .onnx file: end to end, against torch, and
the errors (a backend that cannot run the file, a file that is not an ONNX model)."""
import contextlib
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from amodal.cli import main  # noqa: E402
from amodal.models.amodal_dav2 import AmodalDAV2  # noqa: E402
from amodal.models.configs import TINY_SYNTH  # noqa: E402


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A fill_residual network (it takes the visible mask) saved as ours, and its .onnx, with what
    export-onnx printed."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = AmodalDAV2(TINY_SYNTH)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    model.save_pretrained(root / "torch")
    out = io.StringIO()  # capsys is per test; this fixture is per module
    with contextlib.redirect_stdout(out):
        code = main(["export-onnx", "--model", str(root / "torch"), "--output", str(root / "model.onnx")])
    assert code == 0
    return root, out.getvalue()


def _photo(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 64, 3), dtype=np.uint8)).save(folder / "cat.png")
    mask = np.zeros((50, 64), np.uint8)
    mask[10:40, 12:52] = 255
    visible = mask.copy()
    visible[:25] = 0
    Image.fromarray(mask).save(folder / "mask.png")
    Image.fromarray(visible).save(folder / "visible.png")
    np.save(folder / "d_o.npy", np.tile(np.linspace(0, 1, 64, dtype=np.float32), (50, 1)))
    return ["predict", str(folder / "cat.png"), "--mask", str(folder / "mask.png"), "--visible-mask",
            str(folder / "visible.png"), "--observed-depth", str(folder / "d_o.npy")]


@pytest.mark.slow
def test_export_says_what_it_wrote_and_checks_it(exported):
    root, printed = exported
    assert f"wrote {root / 'model.onnx'}" in printed
    assert "inputs image, amodal_mask, filled_depth" in printed
    gap = float(re.search(r"checked at 112×112: max \|onnxruntime − torch\| = (\S+)", printed).group(1))
    assert gap < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("backend", [[], ["--backend", "onnxruntime"]])
def test_predict_with_the_onnx_file_equals_torch(exported, tmp_path, capsys, backend):
    root, _ = exported
    args = _photo(tmp_path / "in")
    code, _, err = run([*args, "--model", str(root / "torch"), "--output", str(tmp_path / "by_torch")], capsys)
    assert code == 0, err
    code, _, err = run([*args, "--model", str(root / "model.onnx"), *backend, "--output", str(tmp_path / "by_onnx")],
                       capsys)
    assert code == 0, err
    by_torch, by_onnx = np.load(tmp_path / "by_torch" / "cat.npy"), np.load(tmp_path / "by_onnx" / "cat.npy")
    assert np.abs(by_onnx - by_torch).max() < 1e-4
    assert {p.name for p in (tmp_path / "by_onnx").iterdir()} == {"cat.npy", "cat.png", "cat_color.png", "predict.json"}


@pytest.mark.slow
def test_a_backend_that_cannot_run_the_file_is_one_line(exported, tmp_path, capsys):
    root, _ = exported
    args = _photo(tmp_path / "in")
    code, _, err = run([*args, "--model", str(root / "model.onnx"), "--backend", "torch", "--output",
                        str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1 and "runs with the onnxruntime backend" in err, err
    code, _, err = run([*args, "--model", str(root / "torch"), "--backend", "onnxruntime", "--output",
                        str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1 and "python -m amodal export-onnx" in err, err
    code, _, err = run([*args[:4], "--observed-depth", args[-1], "--model", str(root / "model.onnx"), "--output",
                        str(tmp_path / "out")], capsys)
    assert code == 2 and "give --visible-mask" in err, err
    assert not (tmp_path / "out").exists()


def test_a_torn_onnx_file_is_one_line(tmp_path, capsys):
    args = _photo(tmp_path / "in")
    (tmp_path / "torn.onnx").write_bytes(b"\x08\x07\x12\x05torn")
    code, _, err = run([*args, "--model", str(tmp_path / "torn.onnx"), "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1 and "torn.onnx: onnxruntime cannot load it" in err, err


@pytest.mark.parametrize("output, says", [("model.txt", "ends in .onnx"), ("folder.onnx", "is a folder")])
def test_export_arguments_are_checked_before_anything_runs(tmp_path, capsys, output, says):
    (tmp_path / "folder.onnx").mkdir()
    code, _, err = run(["export-onnx", "--model", str(tmp_path), "--output", str(tmp_path / output)], capsys)
    assert code == 2 and says in err, err


def test_export_of_a_file_that_is_no_amodal_dav2_is_one_line(tmp_path, capsys):
    (tmp_path / "model.safetensors").write_bytes(b"")
    code, _, err = run(["export-onnx", "--model", str(tmp_path / "model.safetensors"), "--output",
                        str(tmp_path / "model.onnx")], capsys)
    assert code == 2 and err.count("\n") == 1 and "model.safetensors" in err, err
    assert not (tmp_path / "model.onnx").exists()
