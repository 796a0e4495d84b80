"""Stand-in weights: random values at the real sizes, in the official file formats.

No weights can be fetched where the rehearsal runs (:mod:`amodal.harness.rehearsal`), and
none are committed. What the full profile reads is therefore written here, by our own code,
in the layout each official file has, with random values (each network's own
initialisation, seeded):

==========================  ===============================================  ==========================
weights                     file(s), as released                             given to the notebooks as
==========================  ===============================================  ==========================
Depth Anything V2 ViT-L, -S ``depth_anything_v2_vit{l,s}.pth`` (``pretrained.*``,  ``depth-anything/Depth-Anything-V2-{Large,Small}``
                            ``depth_head.*``, a plain state dict)
Amodal-DAV2 (ViT-L)         ``model.safetensors`` (``encoder.pretrained.*``,  ``zhyever/Amodal-Depth-Anything-DAV2``
                            ``encoder.depth_head.*``) + ``config.json``
Stable Diffusion 1.5's VAE  ``vae/config.json`` + ``vae/diffusion_pytorch_model.safetensors``  ``stable-diffusion-v1-5/stable-diffusion-v1-5``
SAM ViT-B                   ``checkpoints/sam_vit_b_01ec64.pth`` (a plain state dict)  ``ybelkada/segment-anything``
DepthFM                     ``depthfm-v1.ckpt`` (``noising_step``, ``empty_text_embedding``,  a path (no hub repository)
                            ``ldm_hparams``, ``state_dict`` in LDM names)
a trained Amodal-DepthFM    our ``save_pretrained`` folder (no release exists)  a path
==========================  ===============================================  ==========================

The hub ones are placed in a Hugging Face Hub cache laid out as ``huggingface_hub``
documents it ("Understand caching": ``models--ORG--NAME/{blobs,refs,snapshots}``), so
that, with ``HF_HUB_CACHE`` pointing there and ``HF_HUB_OFFLINE=1``, every loader reads
them by hub id through :func:`amodal.utils.hub.resolve`, exactly as it would read the real
ones. ``size="tiny"`` writes the same files at toy sizes (the tests' setting; a tiny
DAV2 file has no standard size, so its loader needs ``config=TINY``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from amodal.adiw.sam_masks import SAM_FILES
from amodal.models import checkpoints
from amodal.models.amodal_dav2 import AmodalDAV2, DepthAnythingV2
from amodal.models.autoencoders import SDAutoencoder, build_vae
from amodal.models.configs import CONFIGS, TINY
from amodal.models.depthfm import AmodalDepthFM, DepthFM
from amodal.models.ldm_convert import (
    DEPTHFM_FILE,
    DEPTHFM_LDM_HPARAMS,
    build_unet,
    tiny_ldm_hparams,
    write_depthfm_checkpoint,
)

SIZES = ("real", "tiny")
DAV2_REPOS = {"l": "depth-anything/Depth-Anything-V2-Large", "s": "depth-anything/Depth-Anything-V2-Small"}
AMODAL_DAV2_REPO = "zhyever/Amodal-Depth-Anything-DAV2"
VAE_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SAM_REPO = "ybelkada/segment-anything"
SAM_MODEL = "vit_b"
# The released Amodal-DAV2's config.json: PyTorchModelHubMixin's record of AmodalDAv2's arguments
# (github.com/zhyever/Amodal-Depth-Anything, src/models/amodalsynthdrive/dav2.py, infer.py).
AMODAL_DAV2_CONFIG = {"encoder": "vitl", "guide_type": "mask+observation"}
# SD 1.5's vae/config.json beyond what build_vae sets: the resolution it was trained at.
SD_VAE_SAMPLE_SIZE = 512
# A toy SD-style VAE (one level) for size="tiny": GroupNorm needs 32 channels at least.
TINY_VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 64, "in_channels": 3, "out_ch": 3, "ch": 32,
                     "ch_mult": [1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}
MANIFEST = "standins.json"
DAV2_OUTPUT_BIAS = 1.0


@dataclass(frozen=True)
class StandIns:
    """Where the stand-ins are and what the notebooks are given (hub ids, or paths).

    Attributes:
        size: ``"real"`` or ``"tiny"``.
        hub_cache: the Hugging Face Hub cache holding the hub ones (``HF_HUB_CACHE``).
        parameters: notebook parameter → value (``DAV2_CHECKPOINT`` → ``depth-anything/...``).
        files: what was written, each with its size in bytes (relative to the folder).
    """

    size: str
    hub_cache: str
    parameters: dict
    files: dict

    def environment(self) -> dict[str, str]:
        """The environment that makes the hub ids read the stand-ins: this cache, offline."""
        return {"HF_HUB_CACHE": self.hub_cache, "HF_HUB_OFFLINE": "1"}


def write_dav2(path: str | os.PathLike, size: str = "l", seed: int = 0, config=None) -> Path:
    """An official ``depth_anything_v2_vit{size}.pth``: a plain state dict, ``pretrained.*`` + ``depth_head.*``."""
    torch.manual_seed(seed)
    model = DepthAnythingV2(config or CONFIGS[size])
    # DAV2 ends in a ReLU: with a random last layer most seeds give disparity 0 everywhere, and a
    # constant depth map stops the ADIW builder (it cannot be min-max normalised) where real weights
    # would not. A positive bias keeps the output above 0, and so varying.
    with torch.no_grad():
        model.head.scratch.output_conv2[-2].bias.fill_(DAV2_OUTPUT_BIAS)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoints.to_official(model.state_dict(), amodal=False), path)
    return path


def write_amodal_dav2(folder: str | os.PathLike, size: str = "l", seed: int = 0, config=None) -> Path:
    """The released Amodal-DAV2 folder: ``model.safetensors`` (``encoder.pretrained.*``,
    ``encoder.depth_head.*``, no metadata of ours) and the mixin's ``config.json``."""
    torch.manual_seed(seed)
    model = AmodalDAV2(config or CONFIGS[size])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(checkpoints.to_official(model.state_dict(), amodal=True), str(folder / checkpoints.WEIGHTS_NAME))
    (folder / checkpoints.CONFIG_NAME).write_text(json.dumps(AMODAL_DAV2_CONFIG, indent=2) + "\n")
    return folder


def write_sd_vae(folder: str | os.PathLike, seed: int = 0, ddconfig: dict | None = None):
    """A diffusers ``AutoencoderKL`` folder (``config.json``, ``diffusion_pytorch_model.safetensors``)
    shaped as SD 1.5's ``vae/``; returns the VAE too, for the DepthFM stand-ins."""
    torch.manual_seed(seed)
    vae = build_vae(ddconfig)
    if ddconfig is None:
        vae.register_to_config(sample_size=SD_VAE_SAMPLE_SIZE)
    vae.save_pretrained(folder, safe_serialization=True)
    return Path(folder), vae


def write_sam(path: str | os.PathLike, model_type: str = SAM_MODEL, seed: int = 0) -> Path:
    """An official ``sam_vit_{b,l,h}_*.pth``: the plain state dict of segment_anything's model."""
    # segment_anything is needed only where SAM runs: imported then, not with the package
    from segment_anything import sam_model_registry

    torch.manual_seed(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sam_model_registry[model_type]().state_dict(), path)
    return path


def write_depthfm(path: str | os.PathLike, hparams: dict | None = None, seed: int = 0):
    """An official ``depthfm-v1.ckpt`` (LDM names); returns the path, the UNet and the embedding."""
    hparams = dict(hparams or DEPTHFM_LDM_HPARAMS)
    torch.manual_seed(seed)
    unet = build_unet(hparams).eval()
    embedding = torch.randn(1, 77, hparams["context_dim"])  # CLIP's 77 tokens of the empty prompt
    write_depthfm_checkpoint(path, unet, embedding, hparams)
    return Path(path), unet, embedding


def write_standins(folder: str | os.PathLike, size: str = "real", seed: int = 0) -> StandIns:
    """Write every stand-in under ``folder``: the hub ones into ``folder/hub`` (a hub cache), the
    others into ``folder/weights``. A folder that already holds them (``standins.json`` of the
    same size and seed, every file present) is reused as it is.

    Args:
        size: ``"real"`` (the released sizes: about 10 GB in all) or ``"tiny"`` (tests).
        seed: seeds every network's initialisation.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    folder = Path(folder).resolve()  # the parameters name absolute paths: notebooks run in their own folder
    found = _reuse(folder, size, seed)
    if found is not None:
        return found
    cache, weights, staging = folder / "hub", folder / "weights", folder / "staging"
    for old in (cache, weights, staging):
        shutil.rmtree(old, ignore_errors=True)
    tiny = size == "tiny"
    parameters = {}
    for k, (dav2, repo) in enumerate(DAV2_REPOS.items()):
        name = f"depth_anything_v2_vit{dav2}.pth"
        write_dav2(staging / name, dav2, seed + k, TINY if tiny else None)
        cache_repo(cache, repo, {name: staging / name})
    parameters["DAV2_CHECKPOINT"] = DAV2_REPOS["l"]
    parameters["DAV2_S_CHECKPOINT"] = DAV2_REPOS["s"]
    released = write_amodal_dav2(staging / "amodal", "l", seed + 2, TINY if tiny else None)
    cache_repo(cache, AMODAL_DAV2_REPO, {p.name: p for p in sorted(released.iterdir())})
    parameters["AMODAL_DAV2_CHECKPOINT"] = AMODAL_DAV2_REPO
    _, vae = write_sd_vae(staging / "vae", seed + 3, TINY_VAE_DDCONFIG if tiny else None)
    depthfm, unet, embedding = write_depthfm(weights / DEPTHFM_FILE, tiny_ldm_hparams() if tiny else None, seed + 4)
    parameters["DEPTHFM_CHECKPOINT"] = str(depthfm)
    amodal_depthfm = AmodalDepthFM.from_depthfm(DepthFM(unet, SDAutoencoder(vae), embedding))
    del unet  # the widened copy is all that is needed now: half the memory of the largest network
    parameters["AMODAL_DEPTHFM_CHECKPOINT"] = str(amodal_depthfm.save_pretrained(weights / "amodal-depthfm"))
    del amodal_depthfm
    cache_repo(cache, VAE_REPO, {f"vae/{p.name}": p for p in sorted((staging / "vae").iterdir())})
    parameters["VAE"] = VAE_REPO
    sam_file = f"checkpoints/{SAM_FILES[SAM_MODEL]}"
    cache_repo(cache, SAM_REPO, {sam_file: write_sam(staging / "sam.pth", SAM_MODEL, seed + 5)})
    parameters["SAM_CHECKPOINT"], parameters["SAM_MODEL"] = SAM_REPO, SAM_MODEL
    shutil.rmtree(staging)
    written = {str(p.relative_to(folder)): p.stat().st_size for p in sorted([*cache.rglob("*"), *weights.rglob("*")])
               if p.is_file()}
    result = StandIns(size, str(cache.resolve()), parameters, written)
    (folder / MANIFEST).write_text(json.dumps(asdict(result) | {"seed": seed}, indent=2) + "\n")
    return result


def cache_repo(cache: str | os.PathLike, repo: str, files: dict[str, Path], revision: str = "main") -> Path:
    """Move ``files`` (path in the repository → a local file) into the hub cache as one commit of
    ``repo`` that ``revision`` points at; returns the snapshot folder.

    The layout of ``huggingface_hub``'s cache guide: each file's bytes once, as
    ``blobs/<sha256>``; ``snapshots/<commit>/<path>`` a relative link to it; ``refs/<revision>``
    the commit, here a hash of the repository's name and its files' hashes.
    """
    root = Path(cache) / ("models--" + repo.replace("/", "--"))
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    hashes = {name: _sha256(Path(path)) for name, path in sorted(files.items())}
    commit = hashlib.sha1(repo.encode() + "".join(f"{n}:{h}" for n, h in hashes.items()).encode()).hexdigest()
    for name, path in files.items():
        blob = root / "blobs" / hashes[name]
        shutil.move(path, blob)
        link = root / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / revision).write_text(commit)
    return root / "snapshots" / commit


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def _reuse(folder: Path, size: str, seed: int) -> StandIns | None:
    """The stand-ins already in ``folder`` when its manifest matches and every file is there."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    record = json.loads(manifest.read_text())
    if record.get("size") != size or record.get("seed") != seed:
        return None
    if any(not (folder / name).is_file() or (folder / name).stat().st_size != n for name, n in record["files"].items()):
        return None
    return StandIns(record["size"], record["hub_cache"], record["parameters"], record["files"])
