"""The official label recipe: squash to 518, fit on M_vis, paste in M_a, 16-bit at 512 — and its wrap bug."""
import numpy as np
import pytest
from PIL import Image

from amodal.adiw.paper_label import paper_label, squash_mask, squash_rgb, to_uint16


class AffineOracle:
    """Depth of a squashed image = a fixed function of its pixels: D = brightness (0..1)."""

    name = "brightness"

    def predict(self, images):
        return [np.asarray(i, np.float64).mean(-1) / 255 for i in images]


def _scene(h=40, w=60):
    rows = np.linspace(0, 1, h)[:, None].repeat(w, 1)
    background = np.stack([rows * 200 + 20] * 3, -1).astype(np.uint8)
    amodal = np.zeros((h, w), bool)
    amodal[10:30, 15:45] = True
    composite = background.copy()
    composite[12:28, 30:50] = 250  # a bright occluder over the right part of the target
    visible = amodal.copy()
    visible[12:28, 30:50] = False
    return composite, background, amodal, visible


def test_every_step_as_the_official_script():
    composite, background, amodal, visible = _scene()
    label = paper_label(composite, background, amodal, visible, AffineOracle(), depth_size=28, label_size=16)
    # by hand, at 28²: PIL bicubic squash, brightness depth, min-max, masks > 0 after bicubic
    comp28 = np.asarray(Image.fromarray(composite).resize((28, 28), Image.Resampling.BICUBIC), np.float64).mean(-1) / 255
    back28 = np.asarray(Image.fromarray(background).resize((28, 28), Image.Resampling.BICUBIC), np.float64).mean(-1) / 255
    d_o, d_b = [(d - d.min()) / (d.max() - d.min()) for d in (comp28, back28)]
    a28 = np.asarray(Image.fromarray(amodal.astype(np.uint8) * 255).resize((28, 28), Image.Resampling.BICUBIC)) > 0
    v28 = (np.asarray(Image.fromarray(visible.astype(np.uint8) * 255).resize((28, 28), Image.Resampling.BICUBIC)) > 0) & a28
    design = np.stack([d_b[v28], np.ones(v28.sum())], 1)
    (s, t), *_ = np.linalg.lstsq(design, d_o[v28], rcond=None)
    assert label.scale == pytest.approx(s, rel=1e-9) and label.shift == pytest.approx(t, abs=1e-9)
    combined = d_o.copy()
    combined[a28] = s * d_b[a28] + t
    codes = np.clip(np.rint(combined * 65535), 0, 65535).astype(np.uint16)
    expected = np.asarray(Image.fromarray(codes).resize((16, 16), Image.Resampling.BICUBIC)) / 65535
    np.testing.assert_allclose(label.target_depth, expected, atol=1e-7)
    assert label.image.shape == (16, 16, 3) and label.amodal_mask.shape == (16, 16)
    assert (label.visible_mask <= label.amodal_mask).all()


def test_uint16_cast_wraps_unless_clipped():
    values = np.array([-0.01, 0.5, 1.02])
    assert to_uint16(values).tolist() == [0, 32768, 65535]
    wrapped = to_uint16(values, clip=False)
    # 1.02·65535 = 66845.7 → 66845 − 65536 = 1309 (a near pixel becomes a far one); −655.35 → −655 + 65536
    assert wrapped.tolist() == [65536 - 655, 32767, 66845 - 65536]


def test_squashes_keep_shapes_and_binary_masks():
    image = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    assert squash_rgb(image, 12).shape == (12, 12, 3)
    mask = np.zeros((30, 50), bool)
    mask[5:20, 10:30] = True
    squashed = squash_mask(mask, 12)
    assert squashed.dtype == bool and 0 < squashed.sum() < 144


def test_out_of_range_counts_the_pixels_the_official_cast_would_wrap():
    class Steep:
        name = "steep"

        def predict(self, images):
            rows = np.linspace(0, 1, 20)[:, None].repeat(20, 1)
            return [rows, rows ** 3]  # D_b curves away from D_o: the fit overshoots at the top

    composite, background, amodal, visible = _scene()
    amodal[:] = True
    visible = np.zeros_like(amodal)
    visible[8:32] = True
    label = paper_label(composite, background, amodal, visible, Steep(), depth_size=20, label_size=20)
    assert label.out_of_range > 0
    assert label.target_depth.min() >= 0 and label.target_depth.max() <= 1
    wrapped = paper_label(composite, background, amodal, visible, Steep(), depth_size=20, label_size=20, clip=False)
    assert not np.allclose(wrapped.target_depth, label.target_depth)
