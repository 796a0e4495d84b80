"""data_samples/: every file named in the README, every JSON valid, small enough to ship."""
import numpy as np
from PIL import Image

from amodal.utils.paths import data_samples_dir
from amodal.adiw.sa1b import load_masks

MAX_BYTES = 10 * 1024 * 1024


def test_size_and_readme_names_every_file():
    root = data_samples_dir()
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES
    readme = (root / "README.md").read_text()
    for path in files:
        if path.name != "README.md" and path.parent.name == "images":
            assert path.name in readme, f"{path.name} has no source/licence line in data_samples/README.md"
    assert "licence" in readme.lower()


def test_every_annotation_file_decodes_against_its_image():
    root = data_samples_dir()
    jsons = sorted((root / "sa1b").glob("*.json"))
    assert len(jsons) >= 4
    for path in jsons:
        info, objects = load_masks(path)
        image = Image.open(root / "images" / info["file_name"])
        assert image.size == (info["width"], info["height"])
        assert len(objects) >= 3
        for annotation, mask in objects:
            assert mask.shape == (info["height"], info["width"]) and mask.dtype == bool
            assert int(mask.sum()) == annotation["area"] > 0
            x, y, w, h = annotation["bbox"]
            rows, cols = np.nonzero(mask)
            assert (x, y) == (cols.min(), rows.min())
