"""Checking an uploaded zip BEFORE anything is extracted, and extracting only what passed.

Refused: not a zip, too many entries, absolute or '..' paths, symlinks and other special
entries, encrypted entries, duplicate paths, absurd compression ratios (zip bombs), a
declared uncompressed total over the limit, too many images. Only regular files are
extracted, each written to a path proven to lie inside the destination.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gan_core.rules import IMAGE_EXTENSIONS  # what the dataset builder reads

# Small entries may legitimately compress very well (flat renders, JSON); ratios only matter
# once the expanded size could hurt.
RATIO_MIN_BYTES = 1 << 20
COPY_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[a-zA-Z]:")


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
    if len(infos) > limits.max_entries:
        raise UnsafeZipError("too_many_entries", f"the zip has {len(infos)} entries; the limit is {limits.max_entries}")

    seen: set[str] = set()
    files = images = total = compressed = 0
    for info in infos:
        parts = member_parts(info.filename)
        kind = _entry_type(info)
        if kind == stat.S_IFLNK:
            raise UnsafeZipError("symlink_entry", f"zip entry {info.filename!r} is a symbolic link; links are not accepted")
        if info.is_dir() or kind == stat.S_IFDIR:
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
    """Inspect, then extract the regular files (no junk) into `dest`, which must not exist yet."""
    summary = inspect_zip(path, limits)
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
                        # zipfile stops at the declared size; this guards the total against lying headers.
                        if written > summary.total_bytes:
                            raise UnsafeZipError("compression_ratio", "the zip expands beyond its declared size")
                        out.write(chunk)
    except UnsafeZipError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError) as exc:  # CRC errors, bad data, file/dir clashes
        shutil.rmtree(dest, ignore_errors=True)
        raise UnsafeZipError("corrupt_zip", f"the zip could not be extracted: {exc}") from exc
    return summary
