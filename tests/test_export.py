"""Depth export: 16-bit codes, outline, colours, the pinhole point cloud and PLY round trip, by hand."""
import numpy as np
import pytest
from PIL import Image

from amodal.export import colourise, depth_to_uint16, outline, point_cloud, read_ply, stamp_caption, write_depth, write_ply


def test_uint16_codes_clip_and_round():
    assert depth_to_uint16(np.array([-0.1, 0.0, 0.5, 1.0, 1.2])).tolist() == [0, 0, 32768, 65535, 65535]


def test_outline_is_the_inner_border():
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    expected = mask.copy()
    expected[2, 2] = False  # the only pixel with all four neighbours inside
    np.testing.assert_array_equal(outline(mask), expected)


def test_colourise_draws_the_outline_white_and_near_red():
    depth = np.zeros((5, 5))
    depth[:, 3:] = 1.0
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    rgb = colourise(depth, mask)
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 5, 3)
    assert (rgb[1, 1] == 255).all() and not (rgb[2, 2] == 255).all()
    assert rgb[0, 4, 0] > rgb[0, 4, 2] and rgb[0, 0, 2] > rgb[0, 0, 0]  # Spectral_r: near red, far blue


def test_point_cloud_is_a_pinhole_with_z_from_disparity():
    depth = np.full((4, 6), 0.4)
    mask = np.zeros((4, 6), bool)
    mask[0, 0] = mask[3, 5] = True
    points, colours = point_cloud(depth, mask, np.zeros((4, 6, 3), np.uint8) + 7)
    z = 1 / (0.4 + 0.1)
    # focal = max(H, W) = 6, centre (3, 2): pixel (row 0, col 0) has centre (0.5, 0.5)
    np.testing.assert_allclose(points[0], [(0.5 - 3) * z / 6, (0.5 - 2) * z / 6, z], rtol=1e-6)
    np.testing.assert_allclose(points[1], [(5.5 - 3) * z / 6, (3.5 - 2) * z / 6, z], rtol=1e-6)
    assert colours.tolist() == [[7, 7, 7], [7, 7, 7]]


def test_ply_round_trip(tmp_path):
    points = np.array([[0.5, -1.25, 2.0], [1e-3, 2.5, 3.0]], np.float32)
    colours = np.array([[255, 0, 10], [1, 2, 3]], np.uint8)
    write_ply(tmp_path / "x.ply", points, colours)
    assert (tmp_path / "x.ply").read_text().startswith("ply\nformat ascii 1.0\nelement vertex 2\n")
    back_points, back_colours = read_ply(tmp_path / "x.ply")
    np.testing.assert_allclose(back_points, points, rtol=1e-5)
    np.testing.assert_array_equal(back_colours, colours)


def test_write_depth_files(tmp_path):
    depth = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    mask = np.ones((3, 4), bool)
    files = write_depth(tmp_path, "photo", depth, mask, ply=True)
    assert sorted(p.name for p in files.values()) == ["photo.npy", "photo.ply", "photo.png", "photo_color.png"]
    np.testing.assert_array_equal(np.load(tmp_path / "photo.npy"), depth)
    codes = np.asarray(Image.open(tmp_path / "photo.png"))
    assert codes.dtype == np.uint16 and codes[2, 3] == 65535 and codes[0, 0] == 0
    assert len(read_ply(tmp_path / "photo.ply")[0]) == 12


def test_write_depth_replaces_the_whole_set(tmp_path):
    depth = np.full((3, 4), 0.5, np.float32)
    mask = np.ones((3, 4), bool)
    write_depth(tmp_path, "photo", depth, mask, ply=True)
    write_depth(tmp_path, "photo", np.zeros((3, 4), np.float32), mask)  # no PLY this time
    # the first set's PLY showed the old depth: it goes with the rest of that set
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.npy", "photo.png", "photo_color.png"]
    assert np.asarray(Image.open(tmp_path / "photo.png")).max() == 0


def test_a_caption_is_written_on_a_band_along_the_bottom_and_keeps_the_size():
    picture = np.full((120, 300, 3), 90, np.uint8)
    stamped = stamp_caption(picture, "D_o: toy row prior, not a depth model")
    assert stamped.shape == picture.shape and stamped.dtype == np.uint8
    rows = np.nonzero((stamped != picture).any(axis=2))[0]
    band = stamped[rows.min():]
    assert rows.min() > 80  # one line of text fits a 300-pixel width: the band is short
    assert (band == 0).all(axis=2).mean() > 0.5 and (band > 200).all(axis=2).any()  # black band, light letters
    longer = stamp_caption(picture, "D_o: toy row prior, not a depth model " * 4)
    assert np.nonzero((longer != picture).any(axis=2))[0].min() < rows.min()  # wrapped onto more lines
