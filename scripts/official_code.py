"""The official code, imported from the user's own clones: shared by the scripts that compare with it.

``compare_official.py`` (parity and speed with random weights) and ``gpu_check.py`` (parity
with the released weights, on a GPU) both import the official model modules from folders the
user passes (nothing is downloaded, nothing of theirs is copied here) and build the official
networks in the shapes of our configs. This file is the one home of that:

* **importing** — :func:`import_package_module` loads a package folder under an alias, so
  that the two DAV2 repositories, which both call their package ``depth_anything_v2``, live
  side by side in one process; :func:`import_depthfm_unet` and :func:`import_pix2gestalt`
  handle code that imports its siblings by bare name or its own package absolutely, and
  leave ``sys.path`` and ``sys.modules`` as they found them. A folder that is not the
  expected clone, or code whose requirements are missing, raises :class:`OfficialCodeError`
  naming the option, the folder and the cause.
* **building** — :func:`official_dav2` and :func:`official_amodal_dav2` construct the
  official ``DepthAnythingV2`` (plain, or guided with ``mask+observation`` as the released
  Amodal-DAV2) with the head shape of one of our sizes; :func:`official_inputs` turns an
  RGB image in [0, 1], an amodal mask and an observed depth into what the official forward
  takes (ImageNet-normalised image; ``cat[2·M_a − 1, 2·D_o − 1]``, as ``AmodalDAv2.forward``
  hands it on).
* **measuring** — :func:`max_gap` (in float64), :func:`perturb` (noise on every parameter,
  so that no zero-initialised layer hides a difference) and :func:`commit_of` (quote it with
  any figure).

The scripts load this file by its path (``scripts/`` is a folder of scripts, not a package).
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

from amodal.models.configs import CONFIGS

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
NOISE_STD = 0.02

# what each option must point at: (file inside the clone, the repository it is a clone of)
EXPECTED = {
    "dav2": ("depth_anything_v2/dpt.py", "DepthAnything/Depth-Anything-V2"),
    "official": ("src/models/amodalsynthdrive/depth_anything_v2/dpt.py", "zhyever/Amodal-Depth-Anything"),
    "depthfm": ("depthfm/unet/openaimodel.py", "CompVis/depth-fm"),
    "pix2gestalt": ("pix2gestalt/ldm/modules/diffusionmodules/openaimodel.py", "cvlab-columbia/pix2gestalt"),
}

# the aliases the two DAV2 packages are imported under (both are called depth_anything_v2)
DAV2_ALIASES = {"dav2": "official_dav2", "official": "official_amodal_dav2"}


class OfficialCodeError(RuntimeError):
    """A folder that is not the expected clone, or official code that cannot be imported."""


# ---------------------------------------------------------------------------- imports


def expected_file(option: str, folder: Path) -> Path:
    """The official module ``--option`` must hold; raises :class:`OfficialCodeError` if absent."""
    relative, repository = EXPECTED[option]
    path = Path(folder).expanduser() / relative
    if not Path(folder).expanduser().is_dir():
        raise OfficialCodeError(f"--{option} {folder}: no such folder (expected a clone of {repository})")
    if not path.is_file():
        raise OfficialCodeError(f"--{option} {folder}: no {relative} in it; pass a clone of {repository}")
    return path


def _import_failed(option: str, folder: Path, error: Exception) -> OfficialCodeError:
    return OfficialCodeError(f"--{option} {folder}: importing its model code failed ({type(error).__name__}: "
                             f"{error}); install that repository's requirements")


def import_package_module(option: str, folder: Path, alias: str, module: str):
    """Import ``module`` of the package folder holding ``EXPECTED[option]`` under the name ``alias``.

    The two DAV2 repositories both call their package ``depth_anything_v2``; importing
    each under its own alias lets one process hold both. Relative imports inside work.
    """
    package_dir = expected_file(option, folder).parent
    _forget(alias)  # an earlier import under this alias may have come from another folder
    spec = importlib.machinery.ModuleSpec(alias, None, is_package=True)
    spec.submodule_search_locations = [str(package_dir)]
    sys.modules[alias] = importlib.util.module_from_spec(spec)
    try:
        return importlib.import_module(f"{alias}.{module}")
    except Exception as error:  # whatever their import raises, say which folder and why
        _forget(alias)
        raise _import_failed(option, folder, error) from error


def import_dav2_dpt(option: str, folder: Path):
    """The ``dpt`` module of a DAV2 clone (``option`` ``"dav2"`` or ``"official"``), under its own alias."""
    return import_package_module(option, folder, DAV2_ALIASES[option], "dpt")


def _forget(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


@contextmanager
def _on_path(folder: Path, names: tuple[str, ...]):
    """``folder`` first on ``sys.path`` and ``names`` free in ``sys.modules`` for one import."""
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def import_depthfm_unet(folder: Path):
    """depth-fm's ``openaimodel`` module (it imports its siblings by bare name: ``util``, ``attention``)."""
    unet_dir = expected_file("depthfm", folder).parent
    with _on_path(unet_dir, ("openaimodel", "util", "attention")):
        try:
            return importlib.import_module("openaimodel")
        except Exception as error:  # whatever their import raises, say which folder and why
            raise _import_failed("depthfm", folder, error) from error


PIX2GESTALT_MODULES = ("modules.diffusionmodules.openaimodel", "modules.diffusionmodules.util", "models.diffusion.ddim")


def import_pix2gestalt(folder: Path) -> tuple:
    """pix2gestalt's ``openaimodel``, diffusion ``util`` and ``ddim`` modules.

    Its code imports its own package as ``ldm.…`` from the ``pix2gestalt/`` folder; that folder
    goes first on ``sys.path`` for the import, and every ``ldm`` module is forgotten after.
    """
    root = expected_file("pix2gestalt", folder).parents[3]
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name == "ldm" or name.startswith("ldm.")}
    sys.path.insert(0, str(root))
    try:
        return tuple(importlib.import_module(f"ldm.{name}") for name in PIX2GESTALT_MODULES)
    except Exception as error:  # whatever their import raises, say which folder and why
        raise _import_failed("pix2gestalt", folder, error) from error
    finally:
        sys.path.remove(str(root))
        _forget("ldm")
        sys.modules.update(saved)


def commit_of(folder: Path) -> str:
    """The checkout's commit (short hash and date), or why it is unknown."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "log", "-1", "--format=%h %cs"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "commit unknown (git not available)"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "commit unknown (not a git clone)"


# ---------------------------------------------------------------------------- building


def dav2_head_shape(encoder: str) -> tuple[int, list[int]]:
    """(features, out_channels) of the DPT head for ``vits`` ... ``vitg``, read from our configs."""
    config = CONFIGS[encoder[-1]]
    return config.features, list(config.out_channels)


def official_dav2(module, encoder: str) -> torch.nn.Module:
    """The official ``DepthAnythingV2`` of ``module`` (its ``dpt``) for ``encoder`` (``"vits"`` ...)."""
    features, out_channels = dav2_head_shape(encoder)
    return module.DepthAnythingV2(encoder=encoder, features=features, out_channels=out_channels)


def official_amodal_dav2(module, encoder: str) -> torch.nn.Module:
    """The official guided ``DepthAnythingV2`` as the released Amodal-DAV2 holds it (its ``.encoder``)."""
    features, out_channels = dav2_head_shape(encoder)
    return module.DepthAnythingV2(encoder=encoder, features=features, out_channels=out_channels,
                                  guide_type="mask+observation", loss_stategy="entire_target_object")


def official_inputs(image: torch.Tensor, amodal_mask: torch.Tensor | None = None,
                    observed_depth: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """What the official forward takes: the ImageNet-normalised image, and for the guided
    network ``cat[2·M_a − 1, 2·D_o − 1]`` (what ``AmodalDAv2.forward`` hands it).

    Args:
        image: (B, 3, H, W) RGB in [0, 1].
        amodal_mask, observed_depth: (B, 1, H, W) in [0, 1], both or neither.

    Returns:
        ``(normalised,)`` or ``(normalised, guidance)``.
    """
    normalised = (image - IMAGENET_MEAN.to(image)) / IMAGENET_STD.to(image)
    if amodal_mask is None:
        return (normalised,)
    return normalised, torch.cat([amodal_mask * 2 - 1, observed_depth * 2 - 1], 1)


# ---------------------------------------------------------------------------- measuring


def perturb(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Add N(0, 0.02²) noise to every parameter, so that no zero-initialised layer hides a difference."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator).to(parameter) * NOISE_STD)
    return module.eval()


def max_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest ``|a − b|``, computed in float64."""
    return (a.double() - b.double()).abs().max().item()
