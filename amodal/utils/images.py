"""Reading images: one reader for every photo, mask and depth PNG the library opens.

A photo comes from a user's folder, an SA-1B tar, a browser upload. Each way in meets
the same bad files, so each uses :func:`read_image` (and :func:`read_mask`,
:func:`read_stored` for masks and 16-bit depth), and each reports them alike: a
``ValueError`` (``FileNotFoundError`` for a missing file) naming the file and what to do.

- **Too many pixels.** A file of a few kilobytes can say 20000×20000 in its header and
  decode to gigabytes. PIL opens lazily (it reads the header only), so the pixel count is
  checked before anything is decoded, against ``max_pixels`` (default
  :data:`DEFAULT_MAX_PIXELS`, 64 megapixels: a 61-megapixel full-frame photo fits).
  PIL's own guard (``DecompressionBombError`` above 2 × ``Image.MAX_IMAGE_PIXELS`` ≈ 179 MP,
  checked while it reads the header) is set aside for the header and lifted to
  ``max_pixels`` where that is larger, so the limit a user meets is always this one, with
  its message. (PIL's setting is module-wide: it is changed under a lock, and a thread
  that calls ``Image.open`` itself during those microseconds goes unguarded.)
- **Deeper than 8 bits.** ``convert("RGB")`` clips 16-bit grey (modes ``I;16``, ``I``) to
  255, all white, and truncates float grey (``F``, e.g. a TIFF in [0, 1]) to 0, all black.
  Those are scaled by their range instead: ``round(code × 255 / 65535)`` and
  ``round(value × 255)``. (A 16-bit *RGB* PNG PIL itself reduces to 8 bits when opening.)
- **EXIF orientation.** A camera stores the sensor's rows and an EXIF tag (274) saying how
  to turn them for viewing. The tag is applied (``ImageOps.exif_transpose``): the array is
  the photo as a viewer shows it, upright, so a mask drawn on the shown photo (in an
  editor, or by clicks in the app) fits it pixel for pixel. Masks and depth files are read
  the same way, so a mask file that carries the tag is turned with its photo.
- **Broken files.** Empty, cut short or not an image at all: one ``ValueError`` naming the
  file. PIL's ``LOAD_TRUNCATED_IMAGES`` stays off, so a cut file never comes back with
  grey where its end was.
- **Too small.** At least :data:`MIN_SIDE` = 2 pixels along each side: a one-pixel row or
  column is a broken or placeholder file far more often than a photo, and the steps after
  reading need a neighbour along each axis (the seam blend pads by reflection, resizing
  interpolates between two pixels).

Ordinary 8-bit files without an orientation tag come back exactly as
``np.array(Image.open(path).convert("RGB"))`` gives them, so what is built from such
photos (ADIW shards, their resumes) stays the same to the bit.
"""
from __future__ import annotations

import io
import os
import struct
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MAX_PIXELS = 64_000_000
MIN_SIDE = 2
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview]

# What PIL raises for a file that does not decode (its plugins raise several kinds).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error)
_PIL_LIMIT_LOCK = threading.Lock()


class _Refused(ValueError):
    """An image this module refuses by its own checks (passed on as it is)."""


def _name(source: ImageSource) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else f"image of {len(bytes(source))} bytes"


@contextmanager
def _pil_limit(pixels: int | None) -> Iterator[None]:
    """PIL's decompression-bomb limit set to ``pixels`` (``None``: off) inside the block."""
    with _PIL_LIMIT_LOCK:  # a module-wide setting of PIL's: one reader at a time changes it
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _too_large(name: str, width: int, height: int, max_pixels: int) -> ValueError:
    return _Refused(
        f"{name}: {width}×{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
        f"(a guard against files that decode to gigabytes); if the image is "
        f"genuine, raise the limit (--max-pixels N on the command line, max_pixels=N in Python) or shrink it")


def open_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE) -> Image.Image:
    """The decoded, upright image, its mode as stored (see the module docstring for the checks).

    Args:
        source: a path, or the file's bytes (an upload).
        max_pixels: refuse images with more pixels than this, before decoding them.
        min_side: refuse images narrower or lower than this.

    Returns:
        A loaded ``PIL.Image.Image`` (no file left open), EXIF orientation applied.

    Raises:
        FileNotFoundError: no file at ``source``.
        ValueError: too many pixels, too small, or not a readable image; the file named.
    """
    name = _name(source)
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be ≥ 1, got {max_pixels}")
    if isinstance(source, (str, os.PathLike)):
        if not Path(source).is_file():
            raise FileNotFoundError(f"image not found: {source}")
        opened = source
    else:
        opened = io.BytesIO(bytes(source))
    try:
        # PIL checks its own limit while reading the header, before a caller sees the size;
        # off for that moment (the header is small), so that the check below, with its
        # message, is the one that applies. It is back on, at least at max_pixels, while
        # the pixels are decoded.
        with _pil_limit(None):
            handle = Image.open(opened)
        with handle:
            width, height = handle.size  # from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise _too_large(name, width, height, max_pixels)
            if min(width, height) < min_side:
                raise _Refused(f"{name}: {width}×{height} pixels, too small: an image needs at least "
                               f"{min_side} pixels along each side")
            if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
                with _pil_limit(max_pixels):  # PIL checks again while decoding some formats
                    handle.load()
            else:
                handle.load()  # no lock: decoding in several threads at once stays possible
            ImageOps.exif_transpose(handle, in_place=True)
            return handle
    except _Refused:
        raise
    except Image.DecompressionBombError as error:  # PIL's guard, where it checks a size of its own
        raise ValueError(f"{name}: {error} Raise the limit (--max-pixels N, max_pixels=N) only for a genuine image") from None
    except _DECODE_ERRORS as error:
        why = str(error).strip() or type(error).__name__
        if "cannot identify image file" in why:
            why = "no image format recognised: empty, or another kind of file"
        raise ValueError(f"{name}: not a readable image ({why}); check that the file is whole and an image "
                         "(open it in a viewer, or copy it again)") from None


def _grey_to_uint8(image: Image.Image, name: str) -> np.ndarray | None:
    """(H, W) uint8 of a 16-bit or float grey image, scaled by its range; ``None`` for other modes."""
    if image.mode in SIXTEEN_BIT_MODES:
        codes = np.asarray(image).astype(np.int64)
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high > 65535:  # mode "I" holds 32 bits; a 16-bit PNG opens as I;16 or I
            raise ValueError(f"{name}: 32-bit integer pixels from {low} to {high}, outside 0–65535; "
                             "save it as an 8- or 16-bit image")
        return np.rint(codes * (255 / 65535)).astype(np.uint8)
    if image.mode == "F":
        values = np.asarray(image).astype(np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise ValueError(f"{name}: float pixels must be finite and in [0, 1], found "
                             f"{np.nanmin(values):g} to {np.nanmax(values):g}; save it as an 8- or 16-bit image")
        return np.rint(values * 255).astype(np.uint8)
    return None


def read_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE) -> np.ndarray:
    """A photo as ``(H, W, 3)`` uint8 RGB, upright, 16-bit and float grey scaled by their range.

    Args:
        source: a path, or the file's bytes.
        max_pixels, min_side: as :func:`open_image`.

    Returns:
        ``(H, W, 3)`` uint8, a new writable array. Alpha is dropped; grey is repeated
        in the three channels.

    Raises:
        FileNotFoundError, ValueError: as :func:`open_image`; also float pixels outside
        [0, 1] and 32-bit integers outside 0–65535.
    """
    image = open_image(source, max_pixels, min_side)
    grey = _grey_to_uint8(image, _name(source))
    if grey is not None:
        return np.repeat(grey[..., None], 3, axis=2)
    return np.array(image.convert("RGB"))


def read_mask(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE) -> np.ndarray:
    """A mask image as ``(H, W)`` bool: ``True`` where its grey value is nonzero.

    8-bit files are taken through ``convert("L")`` (colour: its luminance); 16-bit and
    float grey files by their stored values, so a 16-bit mask of 1s is not lost.
    """
    image = open_image(source, max_pixels, min_side)
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
        return np.asarray(image) > 0
    return np.asarray(image.convert("L")) > 0


def read_stored(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE) -> np.ndarray:
    """An image's values as stored, upright: a 16-bit depth PNG ``(H, W)`` uint16, a mask's codes.

    Returns:
        ``np.array`` of the image in its own mode (a new writable array), e.g. ``(H, W)``
        uint16 for ``I;16``, ``(H, W)`` uint8 for ``L`` or ``P``, ``(H, W, 3)`` for ``RGB``.
    """
    return np.array(open_image(source, max_pixels, min_side))
