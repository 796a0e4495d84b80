"""amodal.utils.images: the pixel limit before decoding, 16-bit and float scaling, EXIF
orientation, broken and tiny files; expected pixels written out by hand."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from amodal.utils.images import DEFAULT_MAX_PIXELS, open_image, read_image, read_mask, read_stored

ORIENTATION = 274  # the EXIF tag


def png_claiming(width: int, height: int) -> bytes:
    """A 4×4 grey PNG whose header (IHDR, CRC fixed) claims ``width``×``height``: a few
    dozen bytes that would decode to width·height pixels if anything tried."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # 8-byte signature, then IHDR: length (4), type (4) at 12, width and height at 16 and 20, CRC at 29
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_plain_8bit_rgb_comes_back_unchanged(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out, pixels)
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(read_image((tmp_path / "a.png").read_bytes()), pixels)  # an upload's bytes


def test_grey_and_rgba_become_rgb(tmp_path):
    grey = np.array([[0, 10], [200, 255]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), np.repeat(grey[..., None], 3, 2))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 9, 0  # transparent: the colour is kept, alpha dropped
    Image.fromarray(rgba).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_image(tmp_path / "c.png")[..., 0], np.full((2, 2), 9))


def test_16bit_grey_png_is_scaled_by_65535_not_clipped(tmp_path):
    codes = np.array([[0, 257, 1000], [32896, 65535, 65278]], np.uint16)
    Image.fromarray(codes).save(tmp_path / "d16.png")
    assert Image.open(tmp_path / "d16.png").mode == "I;16"
    # by hand: 257·255/65535 = 1; 1000·255/65535 = 3.89 → 4; 32896 = 128·257 → 128; 65278 = 254·257 → 254
    expected = np.array([[0, 1, 4], [128, 255, 254]], np.uint8)
    out = read_image(tmp_path / "d16.png")
    np.testing.assert_array_equal(out, np.repeat(expected[..., None], 3, 2))
    np.testing.assert_array_equal(read_stored(tmp_path / "d16.png"), codes)  # the stored codes, uint16
    assert read_stored(tmp_path / "d16.png").dtype == np.uint16
    assert read_mask(tmp_path / "d16.png").tolist() == [[False, True, True], [True, True, True]]


def test_32bit_integer_tiff_in_16bit_range_is_scaled_and_beyond_refused(tmp_path):
    Image.fromarray(np.array([[0, 257], [65535, 514]], np.int32)).save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    assert read_image(tmp_path / "i.tif")[..., 1].tolist() == [[0, 1], [255, 2]]
    Image.fromarray(np.array([[0, 70000], [1, 2]], np.int32)).save(tmp_path / "big.tif")
    with pytest.raises(ValueError, match=r"big\.tif: 32-bit integer pixels from 0 to 70000"):
        read_image(tmp_path / "big.tif")


def test_float_tiff_in_0_1_is_scaled_by_255(tmp_path):
    values = np.array([[0.0, 0.2], [0.6, 1.0]], np.float32)
    Image.fromarray(values).save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    # by hand: 0.2·255 = 51, 0.6·255 = 153
    assert read_image(tmp_path / "f.tif")[..., 2].tolist() == [[0, 51], [153, 255]]
    Image.fromarray(np.array([[0.0, 2.5], [0, 0]], np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(ValueError, match=r"hdr\.tif: float pixels must be finite and in \[0, 1\], found 0 to 2\.5"):
        read_image(tmp_path / "hdr.tif")


@pytest.mark.parametrize("orientation, shown", [
    (1, [[1, 2, 3], [4, 5, 6]]),
    (3, [[6, 5, 4], [3, 2, 1]]),  # rotated 180°
    (6, [[4, 1], [5, 2], [6, 3]]),  # stored rows turned 90° clockwise for viewing (the usual portrait photo)
    (8, [[3, 6], [2, 5], [1, 4]]),  # 90° counter-clockwise
    (2, [[3, 2, 1], [6, 5, 4]]),  # mirrored left-right
])
def test_exif_orientation_gives_the_photo_as_a_viewer_shows_it(tmp_path, orientation, shown):
    stored = np.array([[1, 2, 3], [4, 5, 6]], np.uint8) * 40
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(stored).save(tmp_path / "p.png", exif=exif)
    assert Image.open(tmp_path / "p.png").getexif()[ORIENTATION] == orientation  # the tag was written
    expected = np.array(shown, np.uint8) * 40
    np.testing.assert_array_equal(read_image(tmp_path / "p.png")[..., 0], expected)
    np.testing.assert_array_equal(read_stored(tmp_path / "p.png"), expected)
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), expected > 0)


def test_exif_orientation_of_a_jpeg(tmp_path):
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, 16:] = 255  # stored: dark left half, white right half
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(stored).save(tmp_path / "p.jpg", exif=exif.tobytes(), quality=95)
    shown = read_image(tmp_path / "p.jpg")
    assert shown.shape == (32, 16, 3)
    # turned 90° clockwise: the stored right half (white) is now the lower half
    assert shown[:14].max() < 30 and shown[18:].min() > 225


def test_too_many_pixels_is_refused_from_the_header_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(10000, 10000))
    assert path.stat().st_size < 100
    # a decode would fail ("truncated"); this message shows the header alone decided
    with pytest.raises(ValueError, match=r"bomb\.png: 10000×10000 = 100,000,000 pixels, over the limit of 64,000,000"
                                         r".*--max-pixels N"):
        read_image(path)
    assert DEFAULT_MAX_PIXELS == 64_000_000


def test_our_limit_not_pils_is_met_first_and_a_raised_limit_lifts_pils(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(20000, 20000))  # 400 MP: above PIL's own error threshold (2 × 89.5 MP)
    pil_limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ValueError, match=r"huge\.png: 20000×20000 = 400,000,000 pixels"):
        read_image(path)
    # allowed by a raised limit: PIL's guard does not stop it; decoding the 4×4 stream then fails
    with pytest.raises(ValueError, match=r"huge\.png: not a readable image \(image file is truncated"):
        read_image(path, max_pixels=500_000_000)
    assert Image.MAX_IMAGE_PIXELS == pil_limit  # PIL's setting is restored


def test_the_limit_is_inclusive(tmp_path):
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png", max_pixels=12).shape == (3, 4, 3)
    with pytest.raises(ValueError, match="4×3 = 12 pixels, over the limit of 11 "):
        read_image(tmp_path / "a.png", max_pixels=11)


@pytest.mark.parametrize("kind", ["png", "jpg"])
def test_a_file_cut_in_half_is_one_clear_error(tmp_path, kind):
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG" if kind == "png" else "JPEG")
    path = tmp_path / f"cut.{kind}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ValueError, match=rf"cut\.{kind}: not a readable image \(image file is truncated"):
        read_image(path)


@pytest.mark.parametrize("content", [b"", bytes(np.random.default_rng(2).integers(0, 256, 1000, dtype=np.uint8)),
                                     b"not a png"])
def test_empty_and_garbage_files_are_one_clear_error(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"x\.png: not a readable image \(no image format recognised"):
        read_image(path)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1)])
def test_images_under_two_pixels_a_side_are_refused(tmp_path, shape):
    Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / "t.png")
    with pytest.raises(ValueError, match=rf"t\.png: {shape[1]}×{shape[0]} pixels, too small"):
        read_image(tmp_path / "t.png")
    Image.fromarray(np.full((2, 2), 7, np.uint8)).save(tmp_path / "ok.png")
    assert read_image(tmp_path / "ok.png").tolist() == [[[7] * 3] * 2] * 2


def test_a_missing_file_and_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="image not found"):
        read_image(tmp_path / "none.png")
    with pytest.raises(FileNotFoundError, match="image not found"):
        open_image(tmp_path)
