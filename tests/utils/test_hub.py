"""amodal.utils.hub: hub ids read from a cache in huggingface_hub's documented layout, offline;
paths winning over ids; the one-line error for what cannot be had; the table of known ids
against the official download links."""
import re

import httpx
import pytest
from huggingface_hub import scan_cache_dir, try_to_load_from_cache
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from amodal.utils import hub
from amodal.utils.hub import KNOWN_WEIGHTS, HubFiles, parse_hub_id, pin, resolve
from amodal.utils.paths import repo_root
from hub_testdata import add_to_cache, repo_folder

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def test_the_hand_written_cache_is_the_layout_huggingface_hub_reads(hub_cache):
    add_to_cache(hub_cache, "org/name", {"weights.pth": b"main", "sub/config.json": b"{}"}, commit=COMMIT_A)
    add_to_cache(hub_cache, "org/name", {"weights.pth": b"tagged"}, revision="v2", commit=COMMIT_B)
    (repo,) = scan_cache_dir(hub_cache).repos
    assert repo.repo_id == "org/name" and {r.commit_hash for r in repo.revisions} == {COMMIT_A, COMMIT_B}
    assert {ref for r in repo.revisions for ref in r.refs} == {"main", "v2"}
    found = try_to_load_from_cache("org/name", "weights.pth", cache_dir=hub_cache, revision="v2")
    assert open(found, "rb").read() == b"tagged"


@pytest.mark.parametrize("spec, expected", [
    ("zhyever/Amodal-Depth-Anything-DAV2", ("zhyever/Amodal-Depth-Anything-DAV2", None, None)),
    ("org/name@v1.0", ("org/name", "v1.0", None)),
    ("org/name:checkpoints/sam_vit_b_01ec64.pth", ("org/name", None, "checkpoints/sam_vit_b_01ec64.pth")),
    ("org/name@refs/pr/1:model.safetensors", ("org/name", "refs/pr/1", "model.safetensors")),
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", ("stable-diffusion-v1-5/stable-diffusion-v1-5", None, None)),
    ("/weights/org/name", None),                     # absolute
    ("./org/name", None),                            # explicitly relative
    ("~/org/name", None),
    ("runs/dav2/model", None),                       # three parts
    ("checkpoints/depth_anything_v2_vitl.pth", None),  # a file name, not a repository
    ("C:/weights/model", None),
    ("org--x/name", None),                           # not a valid repository name
    ("org/name:", None),
    ("row-prior", None),
])
def test_what_is_shaped_like_a_hub_id(spec, expected):
    parsed = parse_hub_id(spec)
    assert (None if parsed is None else (parsed.repo, parsed.revision, parsed.filename)) == expected


def test_a_path_that_exists_wins_even_named_like_a_hub_id(hub_cache, tmp_path, monkeypatch):
    add_to_cache(hub_cache, "zhyever/Amodal-Depth-Anything-DAV2", {"model.safetensors": b"hub"})
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "zhyever" / "Amodal-Depth-Anything-DAV2"
    local.mkdir(parents=True)
    assert resolve("zhyever/Amodal-Depth-Anything-DAV2").resolve() == local


def test_what_is_neither_a_path_nor_a_hub_id_is_the_plain_not_found(hub_cache, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^SAM checkpoint not found: .*sam\.pth$"):
        resolve(tmp_path / "sam.pth", what="SAM checkpoint")
    with pytest.raises(FileNotFoundError, match="weights not found: row-prior"):
        resolve("row-prior")


def test_a_known_id_reads_its_file_from_the_snapshot(hub_cache):
    add_to_cache(hub_cache, "depth-anything/Depth-Anything-V2-Small", {"depth_anything_v2_vits.pth": b"ViT-S"},
                 commit=COMMIT_A)
    path = resolve("depth-anything/Depth-Anything-V2-Small")
    snapshot = repo_folder(hub_cache, "depth-anything/Depth-Anything-V2-Small") / "snapshots" / COMMIT_A
    assert path == snapshot / "depth_anything_v2_vits.pth" and path.read_bytes() == b"ViT-S"


def test_revision_and_file_pick_what_they_name(hub_cache):
    add_to_cache(hub_cache, "org/name", {"weights.pth": b"main", "sub/dir/extra.bin": b"x"}, commit=COMMIT_A)
    add_to_cache(hub_cache, "org/name", {"weights.pth": b"tagged"}, revision="v2", commit=COMMIT_B)
    assert resolve("org/name:weights.pth").read_bytes() == b"main"
    assert resolve("org/name@v2:weights.pth").read_bytes() == b"tagged"
    assert resolve(f"org/name@{COMMIT_B}:weights.pth").read_bytes() == b"tagged"
    assert resolve("org/name:sub/dir/extra.bin").read_bytes() == b"x"
    assert resolve("org/name@v2", "weights.pth").read_bytes() == b"tagged"   # the loader's file


def test_a_folder_layout_returns_the_snapshot_and_skips_optional_files_it_lacks(hub_cache):
    add_to_cache(hub_cache, "org/ours", {"model.safetensors": b"w"}, commit=COMMIT_A)
    folder = resolve("org/ours", fallback=HubFiles(("model.safetensors",), optional=("config.json",), folder=""))
    assert folder == repo_folder(hub_cache, "org/ours") / "snapshots" / COMMIT_A and folder.is_dir()
    add_to_cache(hub_cache, "org/vae", {"vae/config.json": b"{}", "vae/diffusion_pytorch_model.safetensors": b"w"})
    vae = resolve("org/vae", fallback=HubFiles(("vae/config.json", "vae/diffusion_pytorch_model.safetensors"),
                                                folder="vae"))
    assert vae.name == "vae" and (vae / "config.json").read_bytes() == b"{}"


def test_a_loaders_file_name_is_found_among_a_known_repositorys_files(hub_cache):
    add_to_cache(hub_cache, "ybelkada/segment-anything", {"checkpoints/sam_vit_b_01ec64.pth": b"vit-b"})
    assert resolve("ybelkada/segment-anything", "sam_vit_b_01ec64.pth").read_bytes() == b"vit-b"


def test_an_unknown_repository_without_a_file_asks_for_one(hub_cache):
    with pytest.raises(ValueError, match="org/name:FILE"):
        resolve("org/name", what="VAE")


@pytest.mark.parametrize("spec, file, command", [
    ("zhyever/Amodal-Depth-Anything-DAV2", "model.safetensors",
     "`hf download zhyever/Amodal-Depth-Anything-DAV2 model.safetensors`"),
    ("depth-anything/Depth-Anything-V2-Large", "depth_anything_v2_vitl.pth",
     "`hf download depth-anything/Depth-Anything-V2-Large depth_anything_v2_vitl.pth`"),
    ("org/name@v9:weights.pth", "weights.pth", "`hf download org/name weights.pth --revision v9`"),
])
def test_offline_and_not_cached_is_one_line_naming_repo_file_and_command(hub_cache, spec, file, command):
    add_to_cache(hub_cache, "org/name", {"weights.pth": b"main"})   # main is cached, v9 is not
    with pytest.raises(FileNotFoundError) as caught:
        resolve(spec, fallback=HubFiles(("model.safetensors",)), what="checkpoint")
    message = str(caught.value)
    repo = spec.split("@")[0].split(":")[0]
    assert f"{file} of {repo}" in message and command in message and "HF_HUB_OFFLINE=1" in message
    assert str(hub_cache) in message and "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__   # no huggingface_hub traceback


def test_the_cache_is_found_from_hf_home_set_while_running(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    add_to_cache(tmp_path / "home" / "hub", "org/name", {"weights.pth": b"from HF_HOME"})
    assert hub.cache_dir() == tmp_path / "home" / "hub"
    assert resolve("org/name:weights.pth").read_bytes() == b"from HF_HOME"


def test_pin_names_the_commit_and_resolves_to_the_same_file(hub_cache, tmp_path):
    add_to_cache(hub_cache, "depth-anything/Depth-Anything-V2-Large", {"depth_anything_v2_vitl.pth": b"L"},
                 commit=COMMIT_A)
    path = resolve("depth-anything/Depth-Anything-V2-Large")
    pinned = pin("depth-anything/Depth-Anything-V2-Large", path)
    assert pinned == f"depth-anything/Depth-Anything-V2-Large@{COMMIT_A}:depth_anything_v2_vitl.pth"
    assert resolve(pinned) == path
    add_to_cache(hub_cache, "org/ours", {"model.safetensors": b"w"}, commit=COMMIT_B)
    folder = HubFiles(("model.safetensors",), folder="")
    assert pin("org/ours", resolve("org/ours", fallback=folder)) == f"org/ours@{COMMIT_B}"
    (tmp_path / "local.pth").write_bytes(b"x")
    assert pin(str(tmp_path / "local.pth"), tmp_path / "local.pth") == str(tmp_path / "local.pth")


def _response(status):
    return httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co/org/name/resolve/main/w.pth"))


@pytest.mark.parametrize("error, says", [
    (lambda: RepositoryNotFoundError("404", response=_response(404)), "no repository org/name"),
    (lambda: GatedRepoError("403", response=_response(403)), "is gated"),
    (lambda: RevisionNotFoundError("404", response=_response(404)), "no revision 'v3'"),
    (lambda: RemoteEntryNotFoundError("404", response=_response(404)), "has no file w.pth"),
    (lambda: HfHubHTTPError("500 Server Error", response=_response(500)), "HfHubHTTPError"),
    (lambda: httpx.ConnectError("connection reset"), "ConnectError"),
    (lambda: OfflineModeIsEnabled("offline"), "not in the Hugging Face cache"),
])
def test_every_error_of_the_hub_becomes_one_file_not_found(monkeypatch, error, says):
    """Online answers cannot be had here: the download function raises what huggingface_hub raises."""
    def download(*args, **kwargs):
        raise error()

    monkeypatch.setattr(hub, "hf_hub_download", download)
    with pytest.raises(FileNotFoundError) as caught:
        resolve("org/name@v3:w.pth")
    assert says in str(caught.value) and "org/name" in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# The download links as the official READMEs and scripts write them (module docstring of amodal.utils.hub)
OFFICIAL_LINKS = [
    # github.com/DepthAnything/Depth-Anything-V2, README, "Pre-trained Models"
    "https://huggingface.co/depth-anything/Depth-Anything-V2-Small/resolve/main/depth_anything_v2_vits.pth?download=true",
    "https://huggingface.co/depth-anything/Depth-Anything-V2-Base/resolve/main/depth_anything_v2_vitb.pth?download=true",
    "https://huggingface.co/depth-anything/Depth-Anything-V2-Large/resolve/main/depth_anything_v2_vitl.pth?download=true",
    # transformers, models/sam/convert_sam_to_hf.py: hf_hub_download("ybelkada/segment-anything", f"checkpoints/{name}.pth")
    "https://huggingface.co/ybelkada/segment-anything/resolve/main/checkpoints/sam_vit_h_4b8939.pth",
    "https://huggingface.co/ybelkada/segment-anything/resolve/main/checkpoints/sam_vit_l_0b3195.pth",
    "https://huggingface.co/ybelkada/segment-anything/resolve/main/checkpoints/sam_vit_b_01ec64.pth",
    # Amodal-Depth-Anything, infer.py: AmodalDAv2.from_pretrained('Zhyever/Amodal-Depth-Anything-DAV2'), a
    # PyTorchModelHubMixin, which reads model.safetensors; the README links the lower-case id
    "https://huggingface.co/zhyever/Amodal-Depth-Anything-DAV2/resolve/main/model.safetensors",
    # DepthFM and Amodal-DepthFM, dfm.py: AutoencoderKL.from_pretrained("runwayml/stable-diffusion-v1-5", subfolder="vae")
    "https://huggingface.co/runwayml/stable-diffusion-v1-5/resolve/main/vae/diffusion_pytorch_model.safetensors",
]


@pytest.mark.parametrize("link", OFFICIAL_LINKS)
def test_the_table_knows_each_official_download(link):
    repo, file = re.match(r"https://huggingface.co/([^/]+/[^/]+)/resolve/main/([^?]+)", link).groups()
    known = KNOWN_WEIGHTS[repo]
    assert file in known.fetch.files + known.also
    if file.startswith("vae/"):
        assert known.fetch.folder == "vae"


def test_the_readme_table_lists_every_known_id_with_its_file():
    text = (repo_root() / "README.md").read_text()
    section = text.split("### Weights by hub id")[1].split("\n#")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    for repo, known in KNOWN_WEIGHTS.items():
        row = next((r for r in rows if f"`{repo}`" in r), None)
        assert row is not None, repo
        assert all(f.split("/")[-1] in " ".join(r for r in rows if f"`{repo}`" in r)
                   for f in known.fetch.files + known.also), repo
