"""Stand-in clones of the official repositories, laid out as the real ones.

Each stand-in has the official module path, class name, constructor, call convention and
state-dict layout, and computes with our own model inside; ``scripts/compare_official.py``
and ``benchmarks/bench_onnx.py`` are tested on them without the official code.
"""
import textwrap
from pathlib import Path

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


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def write_clones(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Stand-in clones of Depth-Anything-V2, Amodal-Depth-Anything and depth-fm under ``tmp_path``."""
    dav2, amodal, dfm = tmp_path / "Depth-Anything-V2", tmp_path / "Amodal-Depth-Anything", tmp_path / "depth-fm"
    write_file(dav2 / "depth_anything_v2" / "dpt.py", DAV2_DPT.format(ours="DepthAnythingV2"))
    write_file(amodal / "src/models/amodalsynthdrive/depth_anything_v2/dpt.py", DAV2_DPT.format(ours="AmodalDAV2"))
    write_file(dfm / "depthfm/unet/openaimodel.py", DEPTHFM_OPENAIMODEL)
    write_file(dfm / "depthfm/unet/util.py", "from amodal.models.ldm_convert import diffusers_to_ldm as LDM_NAMES\n")
    return dav2, amodal, dfm
