"""Decoding, geometry and duplicate detection for dataset images, one piece at a time."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from gan_core.data import decode, geometry
from gan_core.data.dedup import DuplicateIndex, colour_signature, dhash
from gan_core.data.errors import DatasetError, RejectedImage
from gan_core.data.worker import check_not_uniform
from gan_core.data.writer import archive_name
from tests.support.images import huge_bmp_header, huge_png_header, png_bytes, png_chunk

BLACK = (0, 0, 0)


def decode_bytes(data: bytes, background=BLACK, max_pixels=decode.DEFAULT_MAX_PIXELS) -> Image.Image:
    return decode.decode_rgb(decode.open_image(data, max_pixels), background)


@pytest.mark.parametrize("maker", [huge_png_header, huge_bmp_header])
def test_huge_header_refused_before_decoding(maker):
    data = maker(100_000, 100_000)
    t0 = time.perf_counter()
    with pytest.raises(RejectedImage) as exc:
        decode.open_image(data)
    assert exc.value.code == "too_large"
    assert time.perf_counter() - t0 < 1.0


def test_own_pixel_limit_applies_below_pillows():
    # 3000x3000 passes Pillow's guard; ours (1 Mpx) must refuse it from the header alone:
    # the file holds no real pixel data, so decoding would have failed as 'unreadable'.
    with pytest.raises(RejectedImage) as exc:
        decode.open_image(huge_png_header(3000, 3000), max_pixels=1000 * 1000)
    assert exc.value.code == "too_large"
    assert "3000x3000" in exc.value.reason


def test_empty_text_and_truncated_files():
    with pytest.raises(RejectedImage) as exc:
        decode.open_image(b"")
    assert exc.value.code == "unreadable" and "empty" in exc.value.reason
    with pytest.raises(RejectedImage) as exc:
        decode.open_image(b"this is a text file, not a PNG")
    assert exc.value.code == "not_image"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    full = png_bytes(Image.fromarray(noise))
    with pytest.raises(RejectedImage) as exc:
        decode_bytes(full[: len(full) // 2])
    assert exc.value.code == "unreadable"


def test_sixteen_bit_grey_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 64), (8, 1)).astype(np.uint16)
    out = np.asarray(decode_bytes(png_bytes(Image.fromarray(ramp))))
    assert out.shape == (8, 64, 3)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert 100 < out[0, 32, 0] < 160  # mid-grey, not clipped to white


def test_sixteen_bit_rgb_png():
    h, w = 4, 6
    arr = np.zeros((h, w, 3), ">u2")
    arr[..., 0] = np.linspace(0, 65535, w).astype(int)
    arr[..., 2] = 40000
    raw = b"".join(b"\0" + arr[y].tobytes() for y in range(h))  # filter type 0 per row
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))
    out = np.asarray(decode_bytes(data))
    assert out[0, :, 0].tolist() == [0, 51, 102, 153, 204, 255]
    assert set(out[:, :, 2].flatten().tolist()) <= {155, 156} and out[:, :, 1].max() == 0


def test_transparency_is_composited_over_background():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:, :2] = (255, 0, 0, 255)  # opaque red left, transparent right
    out = np.asarray(decode_bytes(png_bytes(Image.fromarray(rgba, "RGBA")), background=(0, 255, 0)))
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, 3]) == (0, 255, 0)

    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(0, (0, 0, 2, 4))
    out = np.asarray(decode_bytes(png_bytes(pal, transparency=0), background=(10, 20, 30)))
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[0, 3]) == (0, 0, 255)

    la = Image.fromarray(np.dstack([np.full((4, 4), 200, np.uint8), np.zeros((4, 4), np.uint8)]), "LA")
    assert tuple(np.asarray(decode_bytes(png_bytes(la), background=(1, 2, 3)))[1, 1]) == (1, 2, 3)


def test_cmyk_jpeg_becomes_rgb():
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)  # red in CMYK
    out = np.asarray(decode_bytes(buf.getvalue()))
    assert out.shape == (16, 16, 3)
    r, g, b = out[8, 8].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied():
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)  # left red
    arr[:, 20:] = (0, 0, 255)  # right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    im = decode.open_image(buf.getvalue())
    assert decode.oriented_size(im) == (20, 40)
    out = np.asarray(decode.decode_rgb(im, BLACK))
    assert out.shape == (40, 20, 3)  # now tall
    assert out[3, 10, 0] > 200 and out[3, 10, 2] < 60  # red on top
    assert out[-4, 10, 2] > 200 and out[-4, 10, 0] < 60  # blue at the bottom


def test_parse_colour():
    assert decode.parse_colour("#FF8000") == (255, 128, 0)
    assert decode.parse_colour("00ff00") == (0, 255, 0)
    for bad in ("red", "#fff", "#12345g", ""):
        with pytest.raises(DatasetError, match="RRGGBB"):
            decode.parse_colour(bad)


def test_too_small_rules_depend_on_crop_mode():
    geometry.check_big_enough(64, 32, 64, "none", False)  # long side suffices when fitting
    with pytest.raises(RejectedImage, match=r"too small \(64x32 < 64\)"):
        geometry.check_big_enough(64, 32, 64, "center", False)
    geometry.check_big_enough(16, 16, 64, "center", True)


def test_crop_boxes():
    assert geometry.crop_box(100, 60, "center") == (20.0, 0.0, 80.0, 60.0)
    assert geometry.crop_box(100, 60, "stretch") == (0.0, 0.0, 100.0, 60.0)
    boxes = {geometry.crop_box(1000, 60, "random", rng_key=f"0:img{i}") for i in range(20)}
    assert len(boxes) > 1  # differ between images...
    for i in range(5):  # ...but repeat exactly for the same (seed, image)
        key = f"7:img{i}"
        assert geometry.crop_box(1000, 60, "random", key) == geometry.crop_box(1000, 60, "random", key)
    for x0, y0, x1, y1 in boxes:
        assert x1 - x0 == 60 and y0 == 0 and 0 <= x0 and x1 <= 1000
    assert geometry.zoom_box((0, 0, 100, 100), 1.25) == (10.0, 10.0, 90.0, 90.0)


def test_none_crop_pads_with_background():
    im = Image.new("RGB", (64, 32), (255, 255, 255))
    square, content = geometry.render_square(im, (0, 0, 64, 32), 32, "none", (255, 0, 0))
    assert square.shape == (32, 32, 3) and content.shape == (16, 32, 3)
    assert tuple(square[0, 16]) == (255, 0, 0) and tuple(square[16, 16]) == (255, 255, 255)


def test_uniform_images_rejected_with_kind():
    for value, word in ((0, "black"), (255, "white"), (128, "uniform")):
        with pytest.raises(RejectedImage, match=word):
            check_not_uniform(np.full((8, 8, 3), value, np.uint8), 2.0)
    check_not_uniform(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8), 2.0)


def test_variants_are_exact_transforms():
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(geometry.apply_variant(a, "flip_h"), a[:, ::-1])
    np.testing.assert_array_equal(geometry.apply_variant(a, "flip_v"), a[::-1])
    np.testing.assert_array_equal(geometry.apply_variant(a, "rot180"), a[::-1, ::-1])
    assert geometry.apply_variant(a, "rot90").shape == (3, 2, 3)
    with pytest.raises(ValueError):
        geometry.apply_variant(a, "spin")


def smooth_random(seed: int, size: int = 64) -> np.ndarray:
    small = np.random.default_rng(seed).integers(0, 255, (6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC))


def test_duplicate_index_exact_and_near():
    idx = DuplicateIndex(near_distance=4)
    a = smooth_random(1)
    b = np.clip(a.astype(int) + np.random.default_rng(2).integers(-2, 3, a.shape), 0, 255).astype(np.uint8)
    c = smooth_random(3)
    ha, hb, hc = dhash(a), dhash(b), dhash(c)
    assert idx.check("sha-a", ha) is None
    idx.add("sha-a", ha, "a.png")
    assert idx.check("sha-a", hc)[0] == "duplicate"
    code, reason = idx.check("sha-b", hb)
    assert code == "near_duplicate" and "a.png" in reason
    assert idx.check("sha-c", hc) is None
    # With colour signatures, the re-encoded copy is still caught.
    idx_sig = DuplicateIndex(near_distance=4)
    idx_sig.add("sha-a", ha, "a.png", colour_signature(a))
    assert idx_sig.check("sha-b", hb, colour_signature(b))[0] == "near_duplicate"
    # Exhaustive check of the banded search against brute force.
    rng = np.random.default_rng(5)
    stored = [int(rng.integers(0, 2**63)) for _ in range(200)]
    idx2 = DuplicateIndex(near_distance=4)
    for i, h in enumerate(stored):
        idx2.add(f"s{i}", h, f"s{i}")
    for h in stored[:50]:
        probe = h ^ (1 << int(rng.integers(0, 64))) ^ (1 << int(rng.integers(0, 64)))
        assert idx2.check("new", probe)[0] == "near_duplicate"
    far = [int(rng.integers(0, 2**63)) for _ in range(50)]
    for probe in far:
        brute = min((probe ^ h).bit_count() for h in stored)
        assert (idx2.check("new", probe) is not None) == (brute <= 4)
    assert DuplicateIndex(near_distance=None).check("x", 0) is None


def test_archive_names_follow_reference_layout():
    assert archive_name(0) == "00000/img00000000.png"
    assert archive_name(999) == "00000/img00000999.png"
    assert archive_name(1000) == "00001/img00001000.png"


def test_same_dhash_but_another_colour_is_not_a_near_duplicate():
    """The grey 8x8 dHash cannot see colour: the same shape in red and in an equally bright
    green hashes identically (the same object rendered with two materials). The colour
    signature tells them apart, so such renders are not thrown away as duplicates."""
    def disc(colour):
        img = np.full((32, 32, 3), 255, np.uint8)
        yy, xx = np.mgrid[0:32, 0:32]
        img[(yy - 16) ** 2 + (xx - 12) ** 2 <= 36] = colour
        return img

    red, green = disc((200, 30, 30)), disc((30, 117, 30))  # equal luma: 0.299R + 0.587G + 0.114B
    assert dhash(red) == dhash(green)  # the hash alone is fooled
    idx = DuplicateIndex(near_distance=4)
    idx.add("sha-red", dhash(red), "red.png", colour_signature(red))
    assert idx.check("sha-green", dhash(green), colour_signature(green)) is None
    # ...and without the signature the index would have called it a duplicate.
    assert idx.check("sha-green", dhash(green))[0] == "near_duplicate"
