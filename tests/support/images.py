"""Hand-made image files for dataset tests: PNG bytes, zips of noise images, and headers
that claim huge sizes while holding almost no data (decompression-bomb stand-ins)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image


def png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + png_chunk(b"IEND", b""))


def huge_bmp_header(width: int, height: int) -> bytes:
    """A BMP whose header claims width x height, followed by 16 bytes of pixels."""
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + header + b"\0" * 16


def noise_png(seed: int, size: int = 48) -> bytes:
    """A PNG of seeded noise: distinct per seed, so deduplication keeps every one."""
    pixels = np.random.RandomState(seed).randint(0, 256, (size, size, 3), dtype=np.uint8)
    return png_bytes(Image.fromarray(pixels))


def zip_bytes(entries) -> bytes:
    """A zip (deflated) of (name, bytes) entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def image_zip(n: int, prefix: str = "renders/") -> bytes:
    """A zip of `n` noise PNGs under `prefix`."""
    return zip_bytes([(f"{prefix}img{i:03d}.png", noise_png(i)) for i in range(n)])
