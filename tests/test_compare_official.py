"""scripts/compare_official.py without the official code: stand-in clones written here.

Each stand-in has the official module path, class name, constructor, call convention and
state-dict layout, and computes with our own model inside. That exercises the script's
own work (argument checks, importing from a folder under an alias, loading the official
layout into ours, the tables, the errors for a wrong folder); its parity figures against
the real code come from running it on real clones.
"""
import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("compare_official_under_test", ROOT / "scripts" / "compare_official.py")
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)

DAV2_DPT = '''
import torch
from amodal import {ours} as Ours

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class DepthAnythingV2(torch.nn.Module):
    """Official names and calls, our arithmetic: the input arrives ImageNet-normalised."""

    def __init__(self, encoder="vitl", features=256, out_channels=(256, 512, 1024, 1024), **kwargs):
        super().__init__()
        net = Ours(encoder[-1], exact=True)
        self.pretrained, self.depth_head = net.encoder, net.head
        self.net = [net]  # a list: not a submodule, so state_dict keys stay official

    def forward(self, x, guidance=None):
        image = x * STD + MEAN
        if guidance is None:
            return self.net[0](image)[:, 0]        # (B, H, W), like the official DAV2
        return self.net[0](image, (guidance[:, :1] + 1) / 2, (guidance[:, 1:] + 1) / 2)
'''

DEPTHFM_OPENAIMODEL = '''
import torch
from util import LDM_NAMES   # a sibling imported by bare name, as depth-fm does
from amodal.models import depthfm


class UNetModel(torch.nn.Module):
    def __init__(self, **hparams):
        super().__init__()
        self.unet = depthfm.build_unet(hparams)

    def state_dict(self, *args, **kwargs):
        return LDM_NAMES(self.unet.state_dict(), self.unet.config)

    def forward(self, x, t=None, context=None, context_ca=None):
        return self.unet(torch.cat([x, context], 1), t, encoder_hidden_states=context_ca).sample
'''


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def clones(tmp_path):
    """Stand-in clones of the three official repositories, laid out as the real ones."""
    dav2, amodal, dfm = tmp_path / "Depth-Anything-V2", tmp_path / "Amodal-Depth-Anything", tmp_path / "depth-fm"
    _write(dav2 / "depth_anything_v2" / "dpt.py", DAV2_DPT.format(ours="DepthAnythingV2"))
    _write(amodal / "src/models/amodalsynthdrive/depth_anything_v2/dpt.py", DAV2_DPT.format(ours="AmodalDAV2"))
    _write(dfm / "depthfm/unet/openaimodel.py", DEPTHFM_OPENAIMODEL)
    _write(dfm / "depthfm/unet/util.py", "from amodal.models.ldm_convert import diffusers_to_ldm as LDM_NAMES\n")
    return dav2, amodal, dfm


def _parity(out: str) -> dict[str, float]:
    """{(model, against): gap} from the parity table."""
    rows = {}
    for line in out.splitlines():
        for against in ("ours exact", "ours fast", "official, standard attention"):
            if against in line and "e" in line.split()[-2]:
                rows[(line[:22].strip(), against)] = float(line.split()[-2])
    return rows


@pytest.mark.slow
def test_tables_from_stand_in_clones(clones, capsys):
    dav2, amodal, dfm = clones
    code = compare.main(["--dav2", str(dav2), "--official", str(amodal), "--depthfm", str(dfm),
                         "--resolution", "28", "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "commit unknown (not a git clone)" in out and "DepthAnything/Depth-Anything-V2" in out
    gaps = _parity(out)
    assert set(gaps) == {("DAV2 ViT-S", "ours exact"), ("DAV2 ViT-S", "ours fast"),
                         ("Amodal-DAV2 ViT-S", "ours exact"), ("Amodal-DAV2 ViT-S", "ours fast"),
                         ("DepthFM UNet (tiny)", "official, standard attention")}
    # the stand-ins un-normalise the image, so a rounding step separates them from ours
    assert all(gap < 1e-5 for gap in gaps.values())
    assert "DepthFM UNet (tiny)" in out and "official standard" in out
    assert "official as shipped" not in out  # the stand-in has no rescaling attention
    for run in ("official", "ours exact", "ours fast"):
        assert f"{run} " in out


def test_modules_of_the_same_name_load_side_by_side(clones):
    dav2, amodal, _ = clones
    first = compare.import_package_module("dav2", dav2, "stand_in_dav2", "dpt")
    second = compare.import_package_module("official", amodal, "stand_in_amodal", "dpt")
    assert Path(first.__file__).is_relative_to(dav2) and Path(second.__file__).is_relative_to(amodal)
    assert first.DepthAnythingV2 is not second.DepthAnythingV2


def test_bare_sibling_imports_leave_no_trace(clones):
    _, _, dfm = clones
    module = compare.import_depthfm_unet(dfm)
    assert hasattr(module, "UNetModel")
    assert "util" not in sys.modules and str(dfm / "depthfm" / "unet") not in sys.path


@pytest.mark.parametrize("option", ["dav2", "official", "depthfm"])
def test_a_folder_without_the_module_is_named(option, tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    code = compare.main([f"--{option}", str(tmp_path / "elsewhere")])
    err = capsys.readouterr().err
    relative, repository = compare.EXPECTED[option]
    assert code == 2 and relative in err and repository in err and str(tmp_path / "elsewhere") in err


def test_a_missing_folder_is_named(tmp_path, capsys):
    assert compare.main(["--dav2", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_failing_import_names_the_folder_and_the_cause(tmp_path, capsys):
    _write(tmp_path / "depth_anything_v2" / "dpt.py", "import a_requirement_not_installed\n")
    assert compare.main(["--dav2", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "a_requirement_not_installed" in err and "requirements" in err
    assert not any(name.startswith("official_dav2") for name in sys.modules)


def test_arguments_are_checked(capsys):
    with pytest.raises(SystemExit):
        compare.parse_args([])
    assert "at least one of --dav2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.parse_args(["--dav2", "x", "--resolution", "500"])
    assert compare.parse_args(["--depthfm", "x", "--depthfm-size", "full"]).latent == 64
    assert compare.parse_args(["--depthfm", "x"]).latent == 8


def test_perturb_moves_every_parameter():
    import torch

    layer = torch.nn.Linear(3, 2)
    torch.nn.init.zeros_(layer.weight), torch.nn.init.zeros_(layer.bias)
    compare.perturb(layer, 0)
    assert (layer.weight != 0).all() and (layer.bias != 0).all()
    assert 0.005 < layer.weight.abs().mean() < 0.05  # std 0.02 noise


def test_an_alias_used_before_is_imported_afresh(clones, tmp_path):
    dav2, _, _ = clones
    compare.import_package_module("dav2", dav2, "stand_in_again", "dpt")
    other = tmp_path / "another clone"
    _write(other / "depth_anything_v2" / "dpt.py", "WHICH = 'the other one'\n")
    assert compare.import_package_module("dav2", other, "stand_in_again", "dpt").WHICH == "the other one"
