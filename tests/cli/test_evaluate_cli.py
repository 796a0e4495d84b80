"""python -m amodal evaluate: a baseline and a trained model on synth, predictions from a folder, clear errors."""
import json

import numpy as np
import pytest

from amodal.cli import main


def test_baseline_on_synth_writes_the_report(tmp_path, capsys):
    assert main(["evaluate", "--model", "baseline:harmonic", "--data", "synth", "--count", "6", "--size", "56",
                 "--output", str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["samples"] == 6 and summary["summary"]["raw"]["overall"]["count"] == 6
    assert "baseline:harmonic (raw)" in capsys.readouterr().out


def test_saved_predictions_equal_the_baseline_they_came_from(tmp_path):
    from amodal.baselines import harmonic
    from amodal.data.streams import SynthStream

    folder = tmp_path / "pred"
    folder.mkdir()
    stream = SynthStream(seed=2026, size=56)
    for k in range(4):
        item = stream[k]
        np.save(folder / f"{item['id']}.npy", harmonic(None, item["amodal_mask"][0].numpy(),
                                                        item["observed_depth"][0].numpy(), item["visible_mask"][0].numpy()))
    common = ["--data", "synth", "--count", "4", "--size", "56", "--quiet"]
    assert main(["evaluate", "--model", f"predictions:{folder}", *common, "--output", str(tmp_path / "a")]) == 0
    assert main(["evaluate", "--model", "baseline:harmonic", *common, "--output", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "samples.csv").read_text() == (tmp_path / "b" / "samples.csv").read_text()


def test_trained_model_folder_is_evaluated(tmp_path):
    import torch

    from amodal.models.amodal_dav2 import AmodalDAV2
    from amodal.models.configs import TINY

    torch.manual_seed(0)
    AmodalDAV2(TINY).save_pretrained(tmp_path / "model")
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--data", "synth", "--count", "3", "--size", "56",
                 "--output", str(tmp_path / "out"), "--quiet"]) == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["samples"] == 3


@pytest.mark.parametrize("args, message", [
    (["--model", "baseline:median"], "unknown baseline 'median'"),
    (["--model", "predictions:/nonexistent"], "no such folder"),
    (["--model", "baseline:plane", "--data", "/nonexistent"], "no such folder"),
])
def test_errors(tmp_path, capsys, args, message):
    argv = ["evaluate", "--data", "synth", "--count", "1", "--size", "56", "--output", str(tmp_path), "--quiet", *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_plain_dav2_baseline_is_its_normalised_depth(tmp_path):
    """dav2:CHECKPOINT scores Depth Anything V2 without guidance: min-max normalised infer_image."""
    import torch

    from amodal.adiw.depth import normalise_disparity
    from amodal.evaluation.predictors import base_depth_predictor
    from amodal.models.amodal_dav2 import DepthAnythingV2
    from amodal.models.configs import TINY
    from amodal.data.streams import SynthStream

    torch.manual_seed(0)
    dav2 = DepthAnythingV2(TINY)
    with torch.no_grad():  # a random ReLU head outputs zeros; lift its bias so the depth varies
        dav2.head.scratch.output_conv2[2].bias.fill_(1.0)
    dav2.save_pretrained(tmp_path / "dav2")
    item = SynthStream(seed=2026, size=56)[0]
    rgb = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    expected = normalise_disparity(dav2.infer_image(rgb))
    np.testing.assert_allclose(base_depth_predictor(dav2)(item), expected, atol=1e-6)
    assert main(["evaluate", "--model", f"dav2:{tmp_path / 'dav2'}", "--data", "synth", "--count", "2", "--size", "56",
                 "--output", str(tmp_path / "out"), "--quiet"]) == 0


def test_several_models_are_compared_and_each_keeps_its_report(tmp_path, capsys):
    import json

    common = ["--data", "synth", "--count", "4", "--size", "56", "--quiet"]
    assert main(["evaluate", "--model", "baseline:harmonic", "baseline:observed", *common, "--output", str(tmp_path / "both")]) == 0
    assert main(["evaluate", "--model", "baseline:harmonic", *common, "--output", str(tmp_path / "one")]) == 0
    both = json.loads((tmp_path / "both" / "comparison.json").read_text())
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert list(both["models"]) == ["baseline:harmonic", "baseline:observed"]
    assert both["models"]["baseline:harmonic"]["raw"]["overall"]["rmse"] == one["summary"]["raw"]["overall"]["rmse"]
    assert (tmp_path / "both" / "baseline-observed" / "samples.csv").is_file()
    text = (tmp_path / "both" / "comparison.txt").read_text()
    assert "baseline:observed" in text and "hard" in text


def test_middlebury_yardstick_from_the_command_line(tmp_path):
    import json

    assert main(["evaluate", "--model", "baseline:harmonic", "--data", "middlebury", "--count", "3", "--size", "56",
                 "--quiet", "--output", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["samples"] == 3 and 0 < summary["summary"]["raw"]["overall"]["rmse"] < 1


@pytest.mark.slow
def test_amodal_depthfm_is_scored_by_its_aligned_mean(tmp_path):
    """depthfm:FOLDER: the mean of n draws, each aligned to D_o on M_vis; repeatable."""
    import json

    import torch

    from amodal.evaluation.predictors import depthfm_predictor
    from amodal.models.depthfm import tiny_amodal_depthfm
    from amodal.data.streams import SynthStream

    model = tiny_amodal_depthfm(seed=0)
    model.save_pretrained(tmp_path / "dfm")
    common = ["--data", "synth", "--count", "2", "--size", "32", "--samples", "2", "--quiet"]
    assert main(["evaluate", "--model", f"depthfm:{tmp_path / 'dfm'}", *common, "--output", str(tmp_path / "a")]) == 0
    assert main(["evaluate", "--model", f"depthfm:{tmp_path / 'dfm'}", *common, "--output", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / x / "summary.json").read_text()) for x in "ab")
    assert a["summary"]["raw"]["overall"]["rmse"] == b["summary"]["raw"]["overall"]["rmse"]
    item = SynthStream(seed=2026, size=32)[0]
    mean = depthfm_predictor(model.eval(), samples=2)(item)
    maps = {k: item[k][None] for k in ("image", "amodal_mask", "observed_depth", "visible_mask")}
    with torch.no_grad():
        draws = model.sample(maps["image"], amodal_mask=maps["amodal_mask"], observed_depth=maps["observed_depth"],
                             visible_mask=maps["visible_mask"], n=2, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(mean, draws.samples.mean(0)[0, 0].clamp(0, 1).numpy(), atol=1e-6)


def test_the_released_model_by_hub_id_and_one_not_cached(tmp_path, hub_cache, capsys):
    import torch

    from amodal.models.amodal_dav2 import AmodalDAV2
    from amodal.models.configs import TINY
    from hub_testdata import add_to_cache, folder_files

    torch.manual_seed(0)
    AmodalDAV2(TINY).save_pretrained(tmp_path / "model")   # a tiny stand-in under the released id
    add_to_cache(hub_cache, "zhyever/Amodal-Depth-Anything-DAV2", folder_files(tmp_path / "model"))
    common = ["--data", "synth", "--count", "2", "--size", "56", "--quiet"]
    assert main(["evaluate", "--model", "zhyever/Amodal-Depth-Anything-DAV2", *common, "--output", str(tmp_path / "a")]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "model"), *common, "--output", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "samples.csv").read_text() == (tmp_path / "b" / "samples.csv").read_text()
    capsys.readouterr()
    assert main(["evaluate", "--model", "zhyever/Amodal-Depth-Anything-DAV2@v0", *common, "--output", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "`hf download zhyever/Amodal-Depth-Anything-DAV2 model.safetensors --revision v0`" in err
    assert "HF_HUB_OFFLINE=1" in err and err.count("\n") == 1 and err.startswith("error: ")
