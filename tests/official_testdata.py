"""Stand-in clones of the official repositories, for the scripts that import the official code.

Each stand-in has the official module path, class name, constructor, call convention and
state-dict layout, and computes with our own model inside. That exercises the scripts' own
work (importing from a folder under an alias, loading the official layout into ours, the
tables, the errors for a wrong folder); their parity figures against the real code come
from running them on real clones. Used by ``test_compare_official.py``,
``test_official_code.py`` and ``test_gpu_check.py``.
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
        image = x * STD.to(x) + MEAN.to(x)
        net = self.net[0].to(x.device)  # its buffers are not this module's: they follow the input
        if guidance is None:
            return net(image)[:, 0]        # (B, H, W), like the official DAV2
        return net(image, (guidance[:, :1] + 1) / 2, (guidance[:, 1:] + 1) / 2)
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
    """``text`` (dedented) into ``path``, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def write_dav2_clones(folder: Path) -> tuple[Path, Path]:
    """Stand-in clones of Depth-Anything-V2 and Amodal-Depth-Anything in ``folder``, laid out as the real ones."""
    dav2, amodal = folder / "Depth-Anything-V2", folder / "Amodal-Depth-Anything"
    write_file(dav2 / "depth_anything_v2" / "dpt.py", DAV2_DPT.format(ours="DepthAnythingV2"))
    write_file(amodal / "src/models/amodalsynthdrive/depth_anything_v2/dpt.py", DAV2_DPT.format(ours="AmodalDAV2"))
    return dav2, amodal


def write_depthfm_clone(folder: Path) -> Path:
    """A stand-in clone of depth-fm in ``folder``: its UNet module imports a sibling by bare name, as the real one."""
    clone = folder / "depth-fm"
    write_file(clone / "depthfm/unet/openaimodel.py", DEPTHFM_OPENAIMODEL)
    write_file(clone / "depthfm/unet/util.py", "from amodal.models.ldm_convert import diffusers_to_ldm as LDM_NAMES\n")
    return clone
