"""Find the images of a dataset source (folder, zip, list of files, video) and check the
size limits before any pixel is decoded."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from gan_core.data.errors import DatasetError
from gan_core.rules import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS


@dataclass
class Entry:
    name: str  # shown in the report
    kind: str  # "file" | "zip"
    ref: object  # path str | (zip path, member)
    label: str | None = None  # class folder name (first path component), if any


@dataclass
class Source:
    kind: str  # "folder" | "zip" | "list" | "video"
    path: str
    entries: list[Entry] = field(default_factory=list)  # empty for video
    ignored: list[str] = field(default_factory=list)  # not image files: listed, not rejected
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (name, code, reason)
    total_bytes: int = 0
    video: dict | None = None  # {"fps", "duration", "size", "estimated_frames", "select"}

    @property
    def found(self) -> int:
        n = self.video["estimated_frames"] if self.video else len(self.entries)
        return n + len(self.refused)

    def summary(self) -> dict:
        out = {"kind": self.kind, "path": self.path, "bytes": self.total_bytes, "ignored_files": len(self.ignored)}
        if self.video:
            out["video"] = dict(self.video)
        return out


def _hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX" or part == "Thumbs.db"


def _class_of(rel: PurePosixPath) -> str | None:
    return rel.parts[0] if len(rel.parts) > 1 else None


def scan_folder(root: Path, exclude: frozenset[Path] = frozenset()) -> Source:
    """`exclude`: resolved paths to skip silently (our own outputs, when written inside root)."""
    src = Source("folder", str(root))
    excluded_names = {p.name for p in exclude}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        for fname in sorted(filenames):
            full = Path(dirpath, fname)
            rel = PurePosixPath(full.relative_to(root).as_posix())
            if _hidden(fname) or not full.is_file():
                continue
            if fname in excluded_names and full.resolve() in exclude:
                continue
            if full.suffix.lower() not in IMAGE_EXTENSIONS:
                src.ignored.append(str(rel))
                continue
            src.total_bytes += full.stat().st_size
            src.entries.append(Entry(str(rel), "file", str(full), _class_of(rel)))
    return src


def _unsafe_member(name: str) -> bool:
    """Names that would escape a folder if extracted: we never extract, but refuse them anyway."""
    if name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return True
    parts = name.split("/")
    return ".." in parts or (len(parts[0]) >= 2 and parts[0][1] == ":")


def scan_zip(path: Path) -> Source:
    src = Source("zip", str(path))
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{path.name} is not a readable zip file: {exc}") from None
    with zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            name = info.filename
            if info.is_dir():
                continue
            if _unsafe_member(name):
                src.refused.append((name, "unsafe_name", "unsafe name in zip (absolute or '..' path); refused"))
                continue
            rel = PurePosixPath(name)
            if any(_hidden(p) for p in rel.parts):
                continue
            if rel.suffix.lower() not in IMAGE_EXTENSIONS:
                src.ignored.append(name)
                continue
            if info.flag_bits & 0x1:
                src.refused.append((name, "unreadable", "encrypted zip entry"))
                continue
            src.total_bytes += info.file_size  # uncompressed: what we will actually read
            src.entries.append(Entry(name, "zip", (str(path), name), _class_of(rel)))
    _relabel_below_common_root(src.entries)
    return src


def _relabel_below_common_root(entries: list[Entry]) -> None:
    """Zips made by "compress folder" wrap everything in one top folder: classes are the
    folders below it then, not that single wrapper."""
    parts = [PurePosixPath(e.name).parts for e in entries]
    if not parts or len({p[0] for p in parts}) != 1 or min(len(p) for p in parts) < 2:
        return
    for e, p in zip(entries, parts):
        e.label = p[1] if len(p) > 2 else None


def scan_list(paths: list) -> Source:
    src = Source("list", f"{len(paths)} files")
    for p in paths:
        name = str(p)
        if not isinstance(p, (str, os.PathLike)):
            src.refused.append((name, "unreadable", "not a file path"))
            continue
        full = Path(p)
        if not full.is_file():
            src.refused.append((name, "unreadable", "file not found" if not full.exists() else "not a file"))
            continue
        src.total_bytes += full.stat().st_size
        # A listed file is an explicit request: no extension filter, the decoder decides.
        src.entries.append(Entry(name, "file", str(full), full.parent.name or None))
    return src


def probe_video(path: Path, fps: float | None, every_nth: int | None) -> Source:
    import imageio_ffmpeg

    src = Source("video", str(path), total_bytes=path.stat().st_size)
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
    except Exception as exc:
        raise DatasetError(f"cannot read video {path.name}: {exc}") from None
    finally:
        reader.close()
    src_fps = float(meta.get("fps") or 0) or 25.0
    duration = float(meta.get("duration") or 0)
    if fps:
        estimate = int(duration * fps + 0.999)
        select = f"fps={fps:g}"
    else:
        nth = every_nth or 1
        estimate = int((duration * src_fps + nth - 1) // nth)
        select = f"every_nth={nth}"
    src.video = {
        "fps": src_fps,
        "duration": duration,
        "size": list(meta.get("size") or ()),
        "estimated_frames": max(estimate, 1),
        "select": select,
    }
    return src


def iter_video_frames(
    path: Path, fps: float | None, every_nth: int | None, limit: int, info: dict
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, uint8 HxWx3) for the selected frames; ffmpeg streams, nothing is held.
    Sets info["truncated_at_limit"] when the video holds more frames than `limit`."""
    import imageio_ffmpeg

    output_params = ["-vf", f"fps={fps:g}"] if fps else None
    reader = imageio_ffmpeg.read_frames(str(path), output_params=output_params)
    nth = 1 if fps else (every_nth or 1)
    emitted = 0
    try:
        meta = next(reader)
        w, h = meta["size"]
        for i, raw in enumerate(reader):
            if i % nth:
                continue
            if emitted >= limit:
                info["truncated_at_limit"] = True
                return
            frame = np.frombuffer(raw, dtype=np.uint8)
            if frame.size != w * h * 3:
                raise DatasetError(f"video {path.name}: unexpected frame size from ffmpeg")
            label = f"t={i / fps:.3f}s" if fps else f"frame {i}"
            yield f"{path.name}#{i:06d} ({label})", frame.reshape(h, w, 3)
            emitted += 1
    except (RuntimeError, OSError, StopIteration) as exc:  # ffmpeg failed on a damaged video
        raise DatasetError(f"cannot read video {path.name} after {emitted} frames: {exc}") from None
    finally:
        reader.close()


def open_source(source, fps: float | None, every_nth: int | None, exclude: frozenset[Path] = frozenset()) -> Source:
    if isinstance(source, (list, tuple)):
        if not source:
            raise DatasetError("the list of source files is empty")
        return scan_list(list(source))
    if not isinstance(source, (str, os.PathLike)):
        raise DatasetError(f"source must be a path or a list of paths, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise DatasetError(f"source not found: {path}")
    if path.is_dir():
        return scan_folder(path, exclude)
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return probe_video(path, fps, every_nth)
    if suffix == ".zip" or zipfile.is_zipfile(path):
        return scan_zip(path)
    if suffix in IMAGE_EXTENSIONS:
        return scan_list([path])
    raise DatasetError(f"unsupported source {path.name}: expected a folder, a zip of images, a video or image files")


def check_limits(src: Source, max_images: int, max_source_bytes: int) -> None:
    if src.found > max_images:
        what = "estimated video frames" if src.video else "images"
        raise DatasetError(
            f"source has {src.found} {what}, more than the limit of {max_images}; "
            "raise max_images (--max-images) or use a smaller source"
        )
    if src.total_bytes > max_source_bytes:
        raise DatasetError(
            f"source is {src.total_bytes / 1e9:.2f} GB, more than the limit of {max_source_bytes / 1e9:.2f} GB; "
            "raise max_source_bytes (--max-source-gb) or use a smaller source"
        )
