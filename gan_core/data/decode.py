"""Open one source image safely and turn it into an 8-bit RGB Pillow image.

Everything here raises `RejectedImage(code, reason)` for a bad file, never anything else,
so one broken file costs one line in the report and not the whole build.
"""

from __future__ import annotations

import io
import os
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gan_core.data.errors import DatasetError, RejectedImage

# Formats the dataset builder accepts (MPO is how Pillow names some camera JPEGs).
ACCEPTED_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "TIFF")

# 8192 x 8192 = 67 Mpx, ~200 MB decoded RGB per worker: large renders pass, while a header
# that claims more is refused before any pixel is decoded. Configurable per build.
DEFAULT_MAX_PIXELS = 8192 * 8192

_COLOUR_RE = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#RRGGBB' (the '#' optional) -> (r, g, b)."""
    match = _COLOUR_RE.match(str(text).strip())
    if not match:
        raise DatasetError(f"background colour must look like #RRGGBB, got {text!r}")
    value = match.group(1)
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def open_image(source: str | os.PathLike | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open lazily (header only) and refuse oversized headers before decoding any pixels."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise RejectedImage("unreadable", "empty file (0 bytes)")
        fp = io.BytesIO(source)
    else:
        if os.path.getsize(source) == 0:
            raise RejectedImage("unreadable", "empty file (0 bytes)")
        fp = source
    Image.init()  # registers every plugin, so `formats=` can name WEBP/TIFF
    formats = [f for f in ACCEPTED_FORMATS if f in Image.OPEN]  # MPO opens through JPEG
    try:
        with warnings.catch_warnings():
            # We apply our own limit below; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(fp, formats=formats)
    except Image.DecompressionBombError as exc:
        raise RejectedImage("too_large", f"image too large (possible decompression bomb): {exc}") from None
    except UnidentifiedImageError:
        raise RejectedImage("not_image", "not an image (or not PNG/JPEG/WebP/BMP/TIFF)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise RejectedImage("unreadable", f"unreadable image header: {exc}") from None
    width, height = im.size
    if width <= 0 or height <= 0:
        raise RejectedImage("unreadable", f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        im.close()
        raise RejectedImage(
            "too_large",
            f"image too large ({width}x{height} = {width * height} pixels > limit {max_pixels}); "
            "refused before decoding (possible decompression bomb)",
        )
    return im


def oriented_size(im: Image.Image) -> tuple[int, int]:
    """Size after EXIF orientation, read from the header only."""
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # broken EXIF: the image itself may still be fine
        orientation = 1
    w, h = im.size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def decode_rgb(im: Image.Image, background: tuple[int, int, int], draft_side: int | None = None) -> Image.Image:
    """Decode pixels, apply EXIF orientation, flatten transparency over `background`."""
    if draft_side and im.format in ("JPEG", "MPO"):
        # JPEG can decode at 1/2, 1/4, 1/8 scale for free; draft keeps both sides >= draft_side.
        im.draft("RGB" if im.mode in ("RGB", "YCbCr") else None, (draft_side, draft_side))
    try:
        im.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for bad data
        raise RejectedImage("unreadable", f"truncated or corrupt image data: {exc}") from None
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a malformed EXIF block should not cost the image
        pass
    return to_rgb(im, background)


def to_rgb(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _wide_to_rgb(im)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("L", "RGB", "1") and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    if mode == "RGB":
        return im
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _wide_to_rgb(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float greyscale -> 8-bit. Pillow's own convert would clip, not scale."""
    arr = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        peak = float(np.nanmax(arr)) if arr.size else 0.0
        scale = 255.0 if peak <= 1.0 else 255.0 / max(peak, 1e-12)
    elif im.mode.startswith("I;16"):
        scale = 255.0 / 65535.0
    else:  # "I": Pillow uses it for 16-bit greyscale too; pick the range the data fills
        peak = float(arr.max()) if arr.size else 0.0
        scale = 1.0 if peak <= 255 else (255.0 / 65535.0 if peak <= 65535 else 255.0 / peak)
    arr8 = np.clip(np.nan_to_num(arr) * scale + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr8, "L").convert("RGB")
