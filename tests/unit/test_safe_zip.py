"""server.datasets.safe_zip: every refusal happens before extraction and names its reason."""

from __future__ import annotations

import io
import stat
import warnings
import zipfile

import pytest
from PIL import Image

from server.datasets.safe_zip import UnsafeZipError, ZipLimits, extract_zip, inspect_zip, member_parts

LIMITS = ZipLimits(max_entries=50, max_compression_ratio=200, max_total_bytes=50 * 10**6, max_images=20)


def png_bytes(colour=(200, 30, 30), size=16) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return buf.getvalue()


def make_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    """entries: list of (name or ZipInfo, bytes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate-name warnings are the point of one test
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def refused(path, limits=LIMITS) -> UnsafeZipError:
    with pytest.raises(UnsafeZipError) as exc:
        inspect_zip(path, limits)
    return exc.value


def test_good_zip_is_counted_and_extracted_without_junk(tmp_path):
    z = make_zip(tmp_path / "ok.zip", [
        ("renders/a.png", png_bytes()), ("renders/sub/b.PNG", png_bytes((0, 0, 255))), ("notes.txt", b"hello"),
        ("__MACOSX/renders/._a.png", b"junk"), ("renders/", b""),
    ])
    summary = inspect_zip(z, LIMITS)
    assert summary.images == 2 and summary.files == 4 and summary.entries == 5
    dest = tmp_path / "out"
    extract_zip(z, dest, LIMITS)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == ["notes.txt", "renders/a.png", "renders/sub/b.PNG"]
    assert (dest / "renders/a.png").read_bytes() == png_bytes()


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "..\\evil.png", "/etc/evil.png", "C:/evil.png", "C:\\evil.png", "a/b:c.png"])
def test_paths_that_could_escape_are_refused(tmp_path, name):
    z = make_zip(tmp_path / "slip.zip", [("ok.png", png_bytes()), (name, png_bytes())])
    assert refused(z).code == "unsafe_path"
    with pytest.raises(UnsafeZipError):
        extract_zip(z, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.png").exists()


def test_member_parts_normalises_harmless_names():
    assert member_parts("./a//b/./c.png") == ("a", "b", "c.png")
    assert member_parts("dir\\x.png") == ("dir", "x.png")


def _special_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode lives in the high 16 bits of external_attr
    info.external_attr = mode << 16
    return info


def test_symlink_entry_is_refused(tmp_path):
    z = make_zip(tmp_path / "link.zip", [("a.png", png_bytes()), (_special_entry("link.png", stat.S_IFLNK | 0o777), b"/etc/passwd")])
    err = refused(z)
    assert err.code == "symlink_entry" and "link.png" in str(err)


def test_device_or_fifo_entry_is_refused(tmp_path):
    z = make_zip(tmp_path / "fifo.zip", [("a.png", png_bytes()), (_special_entry("pipe", stat.S_IFIFO | 0o644), b"")])
    assert refused(z).code == "unsupported_entry"


def test_regular_unix_file_modes_are_fine(tmp_path):
    z = make_zip(tmp_path / "modes.zip", [(_special_entry("a.png", stat.S_IFREG | 0o644), png_bytes())])
    assert inspect_zip(z, LIMITS).images == 1


def test_high_ratio_entry_is_refused_as_zip_bomb(tmp_path):
    z = make_zip(tmp_path / "bomb.zip", [("a.png", png_bytes()), ("bomb.png", bytes(20 * 10**6))])
    err = refused(z)
    assert err.code == "compression_ratio" and "bomb.png" in str(err)


def test_high_overall_ratio_of_many_small_entries_is_refused(tmp_path):
    # Each entry stays under the per-entry threshold; together they still expand absurdly.
    z = make_zip(tmp_path / "many.zip", [("a.png", png_bytes())] + [(f"z{i}.bin", bytes(900_000)) for i in range(10)])
    assert refused(z).code == "compression_ratio"


def test_small_compressible_files_are_fine(tmp_path):
    z = make_zip(tmp_path / "small.zip", [("a.png", png_bytes()), ("dataset.json", b" " * 50_000)])
    assert inspect_zip(z, LIMITS).files == 2


def test_too_many_entries(tmp_path):
    z = make_zip(tmp_path / "entries.zip", [(f"f{i}.txt", b"x") for i in range(51)])
    err = refused(z)
    assert err.code == "too_many_entries" and "51" in str(err)


def test_too_many_images(tmp_path):
    z = make_zip(tmp_path / "images.zip", [(f"i{i}.png", png_bytes()) for i in range(21)])
    err = refused(z)
    assert err.code == "too_many_images" and "21" in str(err)


def test_declared_total_over_the_limit(tmp_path):
    z = make_zip(tmp_path / "big.zip", [("a.png", png_bytes()), ("b.bin", bytes(2000))], compression=zipfile.ZIP_STORED)
    assert refused(z, ZipLimits(max_total_bytes=1000)).code == "zip_too_large"


def test_not_a_zip(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip file at all" * 10)
    err = refused(bad)
    assert err.code == "not_a_zip" and err.status == 400


def test_zip_without_images(tmp_path):
    assert refused(make_zip(tmp_path / "none.zip", [("readme.txt", b"hi")])).code == "no_images"


def test_duplicate_names_are_refused(tmp_path):
    z = make_zip(tmp_path / "dup.zip", [("a.png", png_bytes()), ("A.png", png_bytes())])
    assert refused(z).code == "duplicate_entry"


def test_encrypted_entry_is_refused(tmp_path):
    z = make_zip(tmp_path / "enc.zip", [("a.png", png_bytes()), ("secret.png", png_bytes())], compression=zipfile.ZIP_STORED)
    # zipfile cannot write encrypted entries: set the "encrypted" flag bit in the central directory record.
    raw = bytearray(z.read_bytes())
    record = raw.rfind(b"PK\x01\x02")  # secret.png is the last entry
    assert raw[record + 46:record + 56] == b"secret.png"
    raw[record + 8] |= 0x1
    z.write_bytes(bytes(raw))
    assert refused(z).code == "encrypted_entry"


def test_corrupt_data_fails_extraction_and_leaves_nothing(tmp_path):
    data = png_bytes() + b"MARKER" * 10
    z = make_zip(tmp_path / "crc.zip", [("a.png", data)], compression=zipfile.ZIP_STORED)
    raw = bytearray(z.read_bytes())
    at = raw.find(b"MARKER")
    raw[at:at + 6] = b"BROKEN"  # metadata intact, CRC no longer matches
    z.write_bytes(bytes(raw))
    inspect_zip(z, LIMITS)  # metadata alone looks fine
    dest = tmp_path / "out"
    with pytest.raises(UnsafeZipError) as exc:
        extract_zip(z, dest, LIMITS)
    assert exc.value.code == "corrupt_zip"
    assert not dest.exists()


def test_extract_refuses_an_existing_destination(tmp_path):
    z = make_zip(tmp_path / "ok.zip", [("a.png", png_bytes())])
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        extract_zip(z, tmp_path / "out", LIMITS)
