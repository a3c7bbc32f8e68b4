"""Uploads that used to pass the checks and hurt later (issue 12): zip bombs whose entries
share one compressed block, names the file system cannot store, a file where another entry
needs a folder; multipart and media-type details. Each is refused up front with nothing
left behind, or (the last two) accepted as it should be."""

from __future__ import annotations

import io

import pytest

from server.datasets.safe_zip import ZipLimits, inspect_zip
from tests.support.http import assert_json_error
from tests.support.images import noise_png, zip_bytes
from tests.support.zipbombs import compressible_kernel, overlapping_zip, stretch_last_entry

SERVER_SETTINGS = {"max_upload_bytes": 2_000_000, "max_images": 200, "max_zip_entries": 500}
PNG = noise_png(7, 8)


def upload(api, body: bytes, content_type="application/zip", name="upload"):
    return api.post("datasets", query_string={"name": name}, data=body, content_type=content_type)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """100 entries of ~1 MB each, all ending in one shared kernel: 100 MB from ~33 KB."""
    return overlapping_zip(100, compressible_kernel(1_000_000))


def test_the_overlap_bomb_looks_harmless_to_size_checks(bomb):
    """The point of the bomb: every declared size and ratio is within the limits, so only
    the layout check can catch it."""
    import zipfile

    infos = zipfile.ZipFile(io.BytesIO(bomb)).infolist()
    declared = sum(i.file_size for i in infos)
    limits = ZipLimits()
    assert declared > 1000 * len(bomb)  # what really comes out, per byte uploaded
    assert max(i.file_size / i.compress_size for i in infos) < limits.max_compression_ratio
    assert declared / sum(i.compress_size for i in infos) < limits.max_compression_ratio
    assert declared < limits.max_total_bytes and len(infos) < limits.max_entries


@pytest.mark.usefixtures("nothing_added")
def test_entries_sharing_compressed_data_are_refused(api, bomb):
    assert_json_error(upload(api, bomb), 422, "overlapping_entries", "zip bomb")


@pytest.mark.usefixtures("nothing_added")
def test_an_entry_running_into_the_central_directory_is_refused(api):
    body = stretch_last_entry(zip_bytes([("a.png", PNG), ("b.png", PNG)]), 40)
    assert_json_error(upload(api, body), 422, "overlapping_entries", "directory")


def test_the_layout_check_reads_headers_only(tmp_path, bomb):
    """Refused before a byte is decompressed: nothing is written anywhere."""
    path = tmp_path / "bomb.zip"
    path.write_bytes(bomb)
    from server.datasets.safe_zip import UnsafeZipError, extract_zip

    with pytest.raises(UnsafeZipError) as caught:
        extract_zip(path, tmp_path / "out", ZipLimits())
    assert caught.value.code == "overlapping_entries"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]


@pytest.mark.usefixtures("nothing_added")
@pytest.mark.parametrize("entries, code, words", [
    ([("a" * 252 + ".png", PNG)], "unsafe_path", "longer than 255 bytes"),
    ([("é" * 126 + ".png", PNG)], "unsafe_path", "longer than 255 bytes"),  # 256 bytes in UTF-8
    ([(("d" * 200 + "/") * 6 + "x.png", PNG)], "unsafe_path", "longer than 1024 bytes"),
    ([("a", PNG), ("a/x.png", PNG)], "duplicate_entry", "needs a folder of that name"),
    ([("a/x.png", PNG), ("a", PNG)], "duplicate_entry", "needs a folder of that name"),
    ([("A", PNG), ("a/b/x.png", PNG)], "duplicate_entry", "needs a folder of that name"),
    ([("renders/a.png", PNG), ("renders/a.png/x.png", PNG)], "duplicate_entry", "needs a folder of that name"),
], ids=["long-part", "long-part-utf8", "long-path", "file-then-folder", "folder-then-file", "case", "image-as-folder"])
def test_names_the_file_system_cannot_hold_are_refused_up_front(api, entries, code, words):
    assert_json_error(upload(api, zip_bytes(entries + [("ok.png", PNG)])), 422, code, words)


def test_a_folder_entry_and_a_file_of_the_same_name_clash(tmp_path):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/", b"")
        zf.writestr("a", PNG)
        zf.writestr("b.png", PNG)
    path = tmp_path / "clash.zip"
    path.write_bytes(buf.getvalue())
    from server.datasets.safe_zip import UnsafeZipError

    with pytest.raises(UnsafeZipError, match="needs a folder"):
        inspect_zip(path, ZipLimits())


def test_names_at_the_limits_are_accepted(api):
    entries = [("a" * 251 + ".png", PNG), ("é" * 125 + ".png", PNG), ("folder/x.png", PNG), ("folder/y.png", PNG)]
    r = upload(api, zip_bytes(entries))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["source_images"] == 4


@pytest.mark.parametrize("content_type", ["APPLICATION/ZIP", "Application/Zip", "application/ZIP; charset=binary"])
def test_media_types_are_case_insensitive(api, content_type):
    r = upload(api, zip_bytes([("x.png", PNG)]), content_type=content_type)
    assert r.status_code == 201, r.get_data(as_text=True)


@pytest.mark.usefixtures("nothing_added")
def test_too_many_multipart_parts_is_a_400_that_says_so(api):
    data = {f"extra{i}": "x" for i in range(20)}
    data["file"] = (io.BytesIO(zip_bytes([("x.png", PNG)])), "x.zip")
    r = api.post("datasets", data=data, content_type="multipart/form-data")
    assert_json_error(r, 400, "bad_request", "more than 16 parts")


def test_a_few_extra_multipart_fields_are_fine(api):
    data = {"name": "with extras", "note": "ignored", "file": (io.BytesIO(zip_bytes([("x.png", PNG)])), "x.zip")}
    r = api.post("datasets", data=data, content_type="multipart/form-data")
    assert r.status_code == 201 and r.get_json()["name"] == "with extras"


def test_extraction_counts_real_bytes_and_stops_at_the_budget(tmp_path, monkeypatch):
    """Defence in depth: should a zip ever get past the checks declaring less than it holds,
    extraction counts what it writes, stops once that passes the declared total, and removes
    everything it wrote."""
    import server.datasets.safe_zip as safe_zip

    path = tmp_path / "big.zip"
    path.write_bytes(zip_bytes([(f"img{i}.png", noise_png(i, 64)) for i in range(4)]))
    real = safe_zip.inspect_zip(path, ZipLimits())
    lying = safe_zip.ZipSummary(real.entries, real.files, real.images, real.total_bytes // 2, real.compressed_bytes)
    monkeypatch.setattr(safe_zip, "inspect_zip", lambda p, limits: lying)
    with pytest.raises(safe_zip.UnsafeZipError) as caught:
        safe_zip.extract_zip(path, tmp_path / "out", ZipLimits())
    assert caught.value.code == "zip_too_large"
    assert not (tmp_path / "out").exists()
