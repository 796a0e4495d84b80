"""Tests for amodal.adiw.sam_masks: a tiny random SAM's masks written as SA-1B JSON and read back."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from segment_anything import SamAutomaticMaskGenerator

from amodal.adiw.sam_masks import sam_annotations, sam_generator, tiny_sam, write_sam_masks
from amodal.adiw.sa1b import decode_mask, read_sa1b


def generator():
    return SamAutomaticMaskGenerator(tiny_sam(), points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)


def test_annotations_equal_the_generator_masks():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    gen = generator()
    records = [r for r in gen.generate(image) if r["segmentation"].any()]
    annotations = sam_annotations(image, gen, first_id=5_000_000)
    assert len(annotations) == len(records) > 0
    for a, r in zip(annotations, records):
        assert np.array_equal(decode_mask(a), r["segmentation"])
        assert a["predicted_iou"] == pytest.approx(r["predicted_iou"]) and a["area"] == r["segmentation"].sum()
        assert a["id"] >= 5_000_000


def test_folder_to_sa1b_json(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "photos").mkdir()
    for name in ("b", "a"):
        Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{name}.png")
    paths = write_sam_masks(tmp_path / "photos", tmp_path / "json", generator=generator())
    assert [p.name for p in paths] == ["a.json", "b.json"]
    data = read_sa1b(paths[0])
    assert data["image"]["file_name"] == "a.png" and (data["image"]["height"], data["image"]["width"]) == (32, 48)
    ids = [a["id"] for a in read_sa1b(paths[0])["annotations"] + read_sa1b(paths[1])["annotations"]]
    assert len(ids) == len(set(ids))
    # a second run keeps existing files (resume)
    before = paths[0].stat().st_mtime_ns
    write_sam_masks(tmp_path / "photos", tmp_path / "json", generator=generator())
    assert paths[0].stat().st_mtime_ns == before


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="SAM checkpoint not found"):
        sam_generator(tmp_path / "sam.pth")
    with pytest.raises(ValueError, match="uint8"):
        sam_annotations(np.zeros((4, 4, 3)), generator())
    with pytest.raises(FileNotFoundError, match="image folder"):
        write_sam_masks(tmp_path / "none", tmp_path / "out", generator=generator())


def test_unreadable_and_oversized_photos_get_no_json(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "photos").mkdir()
    Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(tmp_path / "photos" / "a.png")
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "photos" / "big.png")
    (tmp_path / "photos" / "broken.png").write_bytes(b"not a png")
    # 32·48 = 1536 pixels fit, 40·48 = 1920 do not; the builder then skips the two, naming why
    paths = write_sam_masks(tmp_path / "photos", tmp_path / "json", generator=generator(), max_pixels=1536)
    assert [p.name for p in paths] == ["a.json"]
    assert sorted(p.name for p in (tmp_path / "json").iterdir()) == ["a.json"]


@pytest.mark.parametrize("model_type, file", [("vit_h", "checkpoints/sam_vit_h_4b8939.pth"),
                                              ("vit_b", "checkpoints/sam_vit_b_01ec64.pth")])
def test_a_hub_id_reads_the_official_file_of_the_model_type(hub_cache, model_type, file):
    """The official names (segment-anything's README) as the mirror holds them (transformers' SAM
    conversion script reads ybelkada/segment-anything, checkpoints/<name>.pth); not cached here,
    so the error names the file the model type asked for."""
    with pytest.raises(FileNotFoundError, match=f"hf download ybelkada/segment-anything {file}"):
        sam_generator("ybelkada/segment-anything", model_type)
