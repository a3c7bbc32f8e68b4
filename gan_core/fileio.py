"""Atomic file writes: a reader never sees a half-written file, a crash leaves the old one."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

# What a full disk looks like to a writer: no space, over a quota, or over the process's
# file-size limit (RLIMIT_FSIZE, which is also how the tests fill the "disk").
DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if code)


class DiskFullError(OSError):
    """A write ran out of space. The file being written was left as it was before (an
    atomic write removes its temp file), so everything saved earlier is intact."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def _disk_full(target: Path, exc: OSError) -> DiskFullError:
    return DiskFullError(exc.errno, f"no space left on the disk while writing {target.name} "
                                    f"({os.strerror(exc.errno)}); {target.name} was not changed")


def _process_umask() -> int:
    """The umask, read without changing it where Linux shows it (os.umask can only set)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, and put back at once
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """What `open()` would give a new file: 0666 less the umask. Temp files are made 0600,
    so a renamed temp file would be private regardless of the user's settings."""
    return 0o666 & ~_process_umask()


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry must reach the disk too (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories; the rename itself is done
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.

    The file gets `mode`, by default the permissions the user's umask gives new files (a
    render farm's shared folders stay shared; a private data directory is made private by
    its own 0700 folder).

    The temp file lives in the same directory so the final rename is atomic on POSIX and
    Windows. On any exception the temp file is removed and `path` is left untouched; a full
    disk (DISK_FULL_ERRNOS) is raised as DiskFullError naming the file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        yield tmp
        os.chmod(tmp, default_file_mode() if mode is None else mode)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise _disk_full(target, exc) from exc
        raise
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a log in one O_APPEND write (a buffered file may split it in two,
    and a reader would more often catch half a line). If the file ends in a torn line (a
    crash mid-write), the new line starts on a line of its own: the torn one stays
    unreadable, the new one and those after it do not."""
    data = line.rstrip("\n").encode("utf-8") + b"\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)  # the umask applies, as open()'s
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        while data:  # one write for a line this size; the loop only guards a short write
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
