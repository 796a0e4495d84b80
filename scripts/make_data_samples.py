"""Make ``data_samples/``: public-domain / CC0 photographs with SA-1B-format object masks.

Run from the repository root::

    python scripts/make_data_samples.py            # rewrite data_samples/images, sa1b, previews
    python scripts/make_data_samples.py --check    # regenerate in memory, fail if files differ

The photographs come from scikit-image's bundled samples (``skimage.data``, licences in
``data_samples/README.md``). Each object below is a rough polygon drawn by hand on a
pixel grid, refined by a random walker (``amodal.app.segment_classical``); SAM's weights,
which produced SA-1B, are not used. An object listed with ``behind`` loses the pixels
of those objects (they are in front of it), so masks are *visible* (modal) masks, as
SA-1B's are. An object given as ``complement_of`` is everything not in those objects
(a table, a background), with probability ``1 - max(p of those objects)``.

The output is deterministic for the pinned versions of numpy, scipy, scikit-image and
Pillow (random walker with a fixed tolerance; JPEG quality 90). Masks are computed on
the decoded JPEG, so they describe exactly the file that ships.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from amodal.adiw.sa1b import annotation_from_mask, write_sa1b
from amodal.app.segment_classical import soft_iou, stability_score, segment_from_polygon

JPEG_QUALITY = 90
PREVIEW_SIDE = 320


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 32) -> list[tuple[float, float]]:
    """Polygon of an axis-aligned ellipse."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return [(float(cx + rx * np.cos(a)), float(cy + ry * np.sin(a))) for a in t]


def bar(start: tuple[float, float], end: tuple[float, float], width: float) -> list[tuple[float, float]]:
    """Polygon of a straight bar (a tripod leg, a mast) of the given width."""
    (x0, y0), (x1, y1) = start, end
    length = np.hypot(x1 - x0, y1 - y0)
    nx, ny = -(y1 - y0) / length * width / 2, (x1 - x0) / length * width / 2
    return [(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)]


# Each image: skimage loader, SA-1B image_id, and its objects in front-to-back order
# where it matters. Polygon vertices are (x, y) pixels; vertices off the image are clipped.
SAMPLES = {
    "astronaut": {
        "image_id": 1,
        "objects": {
            "helmet": {"polygon": [(279, 515), (279, 470), (285, 430), (300, 395), (325, 370), (355, 352),
                                   (390, 343), (425, 343), (455, 352), (478, 368), (495, 392), (505, 420),
                                   (515, 440), (515, 515)], "band": 5},
            "mission patch": {"polygon": ellipse(171, 385, 36, 37), "band": 4},
            "name tag": {"polygon": [(279, 340), (329, 342), (328, 377), (278, 375)], "band": 3},
            "space shuttle model": {"polygon": [(398, -3), (433, -3), (437, 40), (447, 40), (455, 60), (456, 180),
                                                (458, 230), (455, 255), (462, 270), (400, 278), (368, 272),
                                                (372, 255), (365, 232), (355, 222), (372, 200), (378, 140),
                                                (381, 50), (392, 40)], "band": 4},
            "astronaut": {"polygon": [(20, 515), (20, 420), (24, 350), (38, 300), (60, 262), (100, 228),
                                      (112, 205), (118, 180), (135, 158), (160, 148), (172, 135), (160, 110),
                                      (152, 75), (165, 40), (200, 20), (240, 14), (275, 22), (296, 45),
                                      (302, 80), (295, 112), (280, 132), (283, 150), (300, 170), (306, 205),
                                      (308, 240), (335, 258), (352, 285), (362, 340), (340, 515)], "band": 5,
                          "behind": ["helmet"]},
            "flag": {"polygon": [(-3, -3), (63, -3), (68, 60), (75, 120), (85, 170), (93, 215), (96, 240),
                                 (65, 262), (40, 295), (26, 345), (20, 420), (18, 515), (-3, 515)],
                     "band": 4, "behind": ["astronaut"]},
        },
    },
    "chelsea": {
        "image_id": 2,
        "objects": {
            "left eye": {"polygon": ellipse(171, 116, 37, 32), "band": 4},
            "right eye": {"polygon": ellipse(321, 133, 24, 27), "band": 4},
            "nose": {"polygon": [(243, 232), (258, 226), (285, 229), (290, 238), (278, 250), (265, 258),
                                 (258, 268), (252, 258), (243, 243)], "band": 3},
            "cat": {"polygon": [(40, -3), (395, -3), (370, 40), (362, 60), (372, 100), (374, 150), (368, 200),
                                (360, 250), (350, 303), (-3, 303), (-3, 130), (15, 100), (30, 50)], "band": 6},
        },
    },
    "coffee": {
        "image_id": 3,
        "objects": {
            "coffee": {"polygon": ellipse(287, 145, 83, 47), "band": 5},
            "spoon": {"polygons": [bar((417, 72), (398, 175), 10), bar((398, 175), (386, 240), 8),
                                   ellipse(366, 284, 38, 41)], "band": 2},
            "cup": {"polygon": [(173, 100), (180, 65), (205, 38), (245, 22), (290, 17), (335, 21), (375, 35),
                                (400, 60), (409, 100), (405, 150), (395, 190), (380, 225), (360, 245),
                                (330, 262), (300, 272), (262, 272), (255, 290), (240, 303), (212, 303),
                                (200, 290), (200, 262), (205, 240), (190, 215), (180, 180), (174, 140)],
                    "band": 4, "behind": ["spoon"]},
            "saucer": {"polygon": ellipse(277, 233, 203, 161, n=48), "band": 8, "behind": ["cup", "spoon"]},
            "table": {"complement_of": ["cup", "spoon", "saucer"]},
        },
    },
    "rocket": {
        "image_id": 4,
        "objects": {
            "rocket": {"polygon": [(316, 140), (323, 126), (331, 140), (336, 170), (338, 300), (340, 410),
                                   (306, 410), (308, 300), (310, 170)], "band": 3},
            "launch pad": {"polygon": [(262, 404), (378, 404), (378, 430), (262, 430)], "band": 3,
                           "behind": ["rocket"]},
            "left lightning mast": {"polygons": [bar((199, 120), (199, 195), 8),
                                                 [(190, 190), (208, 190), (212, 430), (172, 430)]], "band": 2},
            "right lightning mast": {"polygons": [bar((446, 120), (446, 195), 8),
                                                  [(438, 190), (455, 190), (478, 430), (440, 430)]], "band": 2},
            "left tower": {"polygon": [(48, -3), (90, -3), (86, 100), (81, 200), (76, 300), (73, 430),
                                       (-3, 430), (-3, 380), (20, 300), (35, 200), (45, 100)], "band": 8},
            "right tower": {"polygon": [(563, -3), (612, -3), (626, 100), (643, 200), (643, 430), (574, 430),
                                        (574, 300), (569, 200), (565, 100)], "band": 8},
        },
    },
    "camera": {
        "image_id": 5,
        "objects": {
            "camera": {"polygon": [(258, 142), (322, 139), (327, 160), (322, 186), (262, 188), (255, 165)],
                       "band": 3},
            "tripod": {"polygons": [bar((292, 190), (292, 482), 12), bar((287, 325), (238, 505), 10),
                                    bar((300, 325), (402, 508), 10), bar((300, 318), (335, 302), 6)],
                       "band": 2},
            "cameraman": {"polygon": [(-3, 245), (40, 200), (90, 170), (135, 108), (160, 80), (185, 66),
                                      (215, 63), (245, 72), (265, 95), (272, 115), (268, 135), (255, 150),
                                      (262, 165), (300, 178), (318, 170), (330, 178), (332, 215), (318, 235),
                                      (300, 245), (285, 290), (265, 305), (240, 308), (205, 300), (175, 340),
                                      (152, 390), (150, 515), (-3, 515)],
                          "band": 5, "behind": ["camera", "tripod"]},
            "tower": {"polygon": [(410, 130), (415, 118), (428, 118), (432, 130), (433, 195), (410, 195)],
                      "band": 3},
            "dome": {"polygon": [(345, 200), (350, 180), (370, 167), (390, 167), (405, 180), (410, 200)],
                     "band": 3, "behind": ["tower"]},
        },
    },
}


def load_rgb(name: str) -> np.ndarray:
    """The sample photograph as ``(H, W, 3)`` uint8, after a JPEG round trip."""
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image


def jpeg_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def segment_image(image: np.ndarray, objects: dict) -> dict:
    """Masks and scores of every object of one image, in the order given."""
    results = {}
    for name, spec in objects.items():
        if "complement_of" in spec:
            others = [results[other] for other in spec["complement_of"]]
            probability = 1.0 - np.max([r["probability"] for r in others], axis=0)
            mask = ~np.any([r["mask"] for r in others], axis=0)
            results[name] = {"mask": mask, "probability": probability, "point": None, "crop_box": None}
        else:
            polygons = spec.get("polygons", [spec.get("polygon")])
            parts = [segment_from_polygon(image, polygon, band=spec["band"]) for polygon in polygons]
            probability = np.max([p.probability for p in parts], axis=0)
            mask = np.any([p.mask for p in parts], axis=0)
            boxes = np.array([p.crop_box for p in parts])
            x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
            x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
            results[name] = {"mask": mask, "probability": probability, "point": parts[0].point,
                             "crop_box": [x0, y0, x1 - x0, y1 - y0]}
        for front in spec.get("behind", []):
            results[name]["mask"] = results[name]["mask"] & ~results[front]["mask"]
            results[name]["probability"] = np.where(results[front]["mask"], 0.0, results[name]["probability"])
    return results


def annotations_for(image_id: int, results: dict) -> list[dict]:
    annotations = []
    for index, (name, result) in enumerate(results.items()):
        mask, probability = result["mask"], result["probability"]
        annotations.append(annotation_from_mask(
            mask,
            # SA-1B ids are not indices: large, with gaps. Ours: image_id·10⁶ + 10·k + 7.
            id=image_id * 1_000_000 + 10 * index + 7,
            predicted_iou=round(soft_iou(probability, mask), 6),
            stability_score=round(stability_score(probability), 6),
            point_coords=[result["point"]] if result["point"] else None,
            crop_box=result["crop_box"],
        ))
    return annotations


def preview(image: np.ndarray, results: dict) -> Image.Image:
    """The photograph with each mask tinted and outlined, longest side ``PREVIEW_SIDE``."""
    palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
               (145, 30, 180), (70, 240, 240), (240, 50, 230)]
    canvas = image.astype(np.float64).copy()
    for index, result in enumerate(results.values()):
        colour = np.array(palette[index % len(palette)], dtype=np.float64)
        canvas[result["mask"]] = 0.55 * canvas[result["mask"]] + 0.45 * colour
    out = Image.fromarray(canvas.round().astype(np.uint8))
    scale = PREVIEW_SIDE / max(out.size)
    out = out.resize((round(out.width * scale), round(out.height * scale)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(out)
    for index, (name, result) in enumerate(results.items()):
        if result["point"] is not None:
            x, y = result["point"][0] * scale, result["point"][1] * scale
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(255, 255, 255), outline=(0, 0, 0))
            draw.text((x + 5, y - 6), name, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    return out


def build(out_dir: Path) -> None:
    for folder in ("images", "sa1b", "previews"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    for name, sample in SAMPLES.items():
        data = jpeg_bytes(load_rgb(name))
        (out_dir / "images" / f"{name}.jpg").write_bytes(data)
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        results = segment_image(image, sample["objects"])
        info = {"image_id": sample["image_id"], "width": int(image.shape[1]), "height": int(image.shape[0]),
                "file_name": f"{name}.jpg"}
        write_sa1b(out_dir / "sa1b" / f"{name}.json", info, annotations_for(sample["image_id"], results))
        buffer = io.BytesIO()
        preview(image, results).save(buffer, format="PNG", optimize=True)
        (out_dir / "previews" / f"{name}.png").write_bytes(buffer.getvalue())
        print(f"{name}: {len(results)} objects: " + ", ".join(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data_samples")
    parser.add_argument("--check", action="store_true", help="regenerate into a temporary folder and compare")
    args = parser.parse_args(argv)
    if not args.check:
        build(args.out)
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        build(Path(temporary))
        differ = [str(path.relative_to(temporary)) for path in sorted(Path(temporary).rglob("*")) if path.is_file()
                  and (not (args.out / path.relative_to(temporary)).is_file()
                       or (args.out / path.relative_to(temporary)).read_bytes() != path.read_bytes())]
    if differ:
        print("differ from a fresh build: " + ", ".join(differ), file=sys.stderr)
        return 1
    print("data_samples/ matches a fresh build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
