"""Checking an uploaded zip BEFORE anything is extracted, and extracting only what passed.

Refused: not a zip, too many entries, absolute or '..' paths, names the file system cannot
hold, symlinks and other special entries, encrypted entries, duplicate paths and a file
where another entry needs a folder, absurd compression ratios, entries whose bytes overlap
each other or the central directory (zip bombs that reuse one compressed block for many
entries, so the sizes they declare look harmless), a declared uncompressed total over the
limit, too many images. Only regular files are extracted, each written to a path proven to
lie inside the destination, and extraction counts the bytes really written: it stops the
moment they pass the limit and removes everything it wrote.
"""

from __future__ import annotations

import re
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gan_core.fileio import is_disk_full
from gan_core.rules import IMAGE_EXTENSIONS  # what the dataset builder reads

# Small entries may legitimately compress very well (flat renders, JSON); ratios only matter
# once the expanded size could hurt.
RATIO_MIN_BYTES = 1 << 20
COPY_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[a-zA-Z]:")
# File-system facts, not choices: a name part longer than NAME_MAX (255 bytes on every
# common file system) cannot be created; whole names are kept well under PATH_MAX (4096)
# so the data directory's own path still fits in front of them.
MAX_NAME_PART_BYTES = 255
MAX_NAME_BYTES = 1024
# The fixed part of a local file header (APPNOTE 4.3.7); name and extra lengths at 26 and 28.
LOCAL_HEADER_SIZE = 30
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


class UnsafeZipError(ValueError):
    """A refused upload: `code` is the API error code, `status` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 50000
    max_compression_ratio: float = 200.0
    max_total_bytes: int = 20 * 10**9
    max_images: int = 25000

    @classmethod
    def from_config(cls, config) -> "ZipLimits":
        """The limits a server's settings (server.config.ServerConfig) ask for."""
        return cls(config.max_zip_entries, config.max_compression_ratio, config.max_extracted_bytes, config.max_images)


@dataclass(frozen=True)
class ZipSummary:
    entries: int
    files: int
    images: int
    total_bytes: int
    compressed_bytes: int


def member_parts(name: str) -> tuple[str, ...]:
    """The path components of a zip entry name, or UnsafeZipError if it could escape the destination."""
    normalized = name.replace("\\", "/")  # zips made on Windows may use backslashes
    if normalized.startswith("/") or _DRIVE.match(normalized):
        raise UnsafeZipError("unsafe_path", f"zip entry {name!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(normalized).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeZipError("unsafe_path", f"zip entry {name!r} points outside the archive ('..')")
    if any("\x00" in p or ":" in p for p in parts):
        raise UnsafeZipError("unsafe_path", f"zip entry {name!r} has a character not allowed in file names")
    return parts


def _check_storable(name: str, parts: tuple[str, ...]) -> None:
    """Names the server's file system could not create would fail the whole preparation later."""
    long_part = next((p for p in parts if len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_PART_BYTES), None)
    if long_part is not None:
        raise UnsafeZipError("unsafe_path", f"zip entry {_short(name)!r} has a file or folder name longer than "
                                            f"{MAX_NAME_PART_BYTES} bytes, which no file system stores; shorten it")
    if len("/".join(parts).encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise UnsafeZipError("unsafe_path", f"zip entry {_short(name)!r} has a path longer than {MAX_NAME_BYTES} "
                                            "bytes; use fewer or shorter folder names")


def _short(name: str, keep: int = 60) -> str:
    return name if len(name) <= keep else f"{name[:keep]}..."


def _check_layout(path: str | Path, infos: list[zipfile.ZipInfo], central_directory: int) -> None:
    """Every entry's bytes (local header + compressed data) must lie apart from every other
    entry's and before the central directory. A zip writer never shares bytes; a zip bomb
    does, so that many entries expand one block while each declares a modest size."""
    spans = []
    with open(path, "rb") as fh:
        for info in infos:
            fh.seek(info.header_offset)
            header = fh.read(LOCAL_HEADER_SIZE)
            if len(header) < LOCAL_HEADER_SIZE or header[:4] != LOCAL_HEADER_SIGNATURE:
                raise UnsafeZipError("not_a_zip", f"zip entry {_short(info.filename)!r} has no local header "
                                                  "where the directory says", status=400)
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            end = info.header_offset + LOCAL_HEADER_SIZE + name_length + extra_length + info.compress_size
            spans.append((info.header_offset, end, info.filename))
    spans.sort()
    for (_, end, name), (start, _, other) in zip(spans, spans[1:]):
        if end > start:
            raise UnsafeZipError("overlapping_entries", f"zip entries {_short(name)!r} and {_short(other)!r} share "
                                                        "their compressed data: refused as a zip bomb")
    if spans and spans[-1][1] > central_directory:
        raise UnsafeZipError("overlapping_entries", f"zip entry {_short(spans[-1][2])!r} runs into the zip's "
                                                    "directory: refused as a zip bomb")


def _entry_type(info: zipfile.ZipInfo) -> int:
    """The stat file type stored by Unix zip tools in the high bits of external_attr (0 if none)."""
    return stat.S_IFMT((info.external_attr >> 16) & 0xFFFF)


def is_junk(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and Finder metadata: never data, never extracted."""
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store")


def inspect_zip(path: str | Path, limits: ZipLimits) -> ZipSummary:
    """Validate every entry's metadata without decompressing anything."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeZipError("not_a_zip", f"the upload is not a readable zip archive ({exc})", status=400) from exc
    with archive:
        infos = archive.infolist()
        central_directory = archive.start_dir
    if len(infos) > limits.max_entries:
        raise UnsafeZipError("too_many_entries", f"the zip has {len(infos)} entries; the limit is {limits.max_entries}")
    _check_layout(path, infos, central_directory)

    seen: set[str] = set()
    folders: dict[str, str] = {}  # lower-cased folder path -> an entry that needs it
    files = images = total = compressed = 0
    for info in infos:
        parts = member_parts(info.filename)
        kind = _entry_type(info)
        if kind == stat.S_IFLNK:
            raise UnsafeZipError("symlink_entry", f"zip entry {info.filename!r} is a symbolic link; links are not accepted")
        if info.is_dir() or kind == stat.S_IFDIR:
            if parts and not is_junk(parts):
                folders.setdefault("/".join(parts).lower(), info.filename)
            continue
        if kind not in (0, stat.S_IFREG):
            raise UnsafeZipError("unsupported_entry", f"zip entry {info.filename!r} is not a regular file")
        if info.flag_bits & 0x1:
            raise UnsafeZipError("encrypted_entry", f"zip entry {info.filename!r} is encrypted; upload an unencrypted zip")
        if not parts:
            continue
        key = "/".join(parts).lower()  # case-insensitive: the zip may be extracted on macOS/Windows
        if key in seen:
            raise UnsafeZipError("duplicate_entry", f"zip entry {info.filename!r} appears more than once")
        seen.add(key)
        if not is_junk(parts):
            _check_storable(info.filename, parts)
            for depth in range(1, len(parts)):
                folders.setdefault("/".join(parts[:depth]).lower(), info.filename)
        if info.file_size > RATIO_MIN_BYTES and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1):
            raise UnsafeZipError(
                "compression_ratio",
                f"zip entry {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                f"(limit {limits.max_compression_ratio:g}x): refused as a possible zip bomb",
            )
        files += 1
        total += info.file_size
        compressed += info.compress_size
        if not is_junk(parts) and PurePosixPath(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS:
            images += 1

    clash = next((key for key in seen if key in folders), None)
    if clash is not None:
        raise UnsafeZipError("duplicate_entry", f"zip entry {_short(clash)!r} is a file, but entry "
                                                f"{_short(folders[clash])!r} needs a folder of that name")
    if total > limits.max_total_bytes:
        raise UnsafeZipError("zip_too_large", f"the zip expands to {total} bytes; the limit is {limits.max_total_bytes}")
    if total > RATIO_MIN_BYTES and total > limits.max_compression_ratio * max(compressed, 1):
        raise UnsafeZipError(
            "compression_ratio",
            f"the zip expands {total / max(compressed, 1):.0f}x overall (limit {limits.max_compression_ratio:g}x): refused as a possible zip bomb",
        )
    if images > limits.max_images:
        raise UnsafeZipError("too_many_images", f"the zip holds {images} images; the limit is {limits.max_images}")
    if images == 0:
        raise UnsafeZipError("no_images", f"the zip holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return ZipSummary(entries=len(infos), files=files, images=images, total_bytes=total, compressed_bytes=compressed)


def extract_zip(path: str | Path, dest: str | Path, limits: ZipLimits) -> ZipSummary:
    """Inspect, then extract the regular files (no junk) into `dest`, which must not exist yet.
    Any failure removes `dest` with everything written so far."""
    summary = inspect_zip(path, limits)
    # What the zip may really produce: no more than it declares, never more than the limit.
    budget = min(summary.total_bytes, limits.max_total_bytes)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=False)
    root = dest.resolve()
    written = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                parts = member_parts(info.filename)
                if info.is_dir() or _entry_type(info) == stat.S_IFDIR or not parts or is_junk(parts):
                    continue
                target = root.joinpath(*parts)
                if not target.resolve().is_relative_to(root):  # belt and braces after member_parts
                    raise UnsafeZipError("unsafe_path", f"zip entry {info.filename!r} points outside the archive")
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(COPY_CHUNK):
                        written += len(chunk)
                        # Counted as written, not as declared: stop the moment the real total passes.
                        if written > budget:
                            raise UnsafeZipError("zip_too_large", f"the zip expands beyond {budget} bytes "
                                                                  "(its declared size or the server's limit)")
                        out.write(chunk)
    except UnsafeZipError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if is_disk_full(exc):
            raise  # not the zip's fault: the caller reports a full disk
        raise UnsafeZipError("corrupt_zip", f"the zip could not be extracted: {exc}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as exc:  # CRC errors, bad data
        shutil.rmtree(dest, ignore_errors=True)
        raise UnsafeZipError("corrupt_zip", f"the zip could not be extracted: {exc}") from exc
    return summary
