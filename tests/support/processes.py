"""Process trees from /proc (Linux), for tests that crash a server with everything it started."""

from __future__ import annotations

import os
import signal
from pathlib import Path

HAS_PROC = Path("/proc/self/stat").exists()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the command name (field 2) may hold spaces


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[1]) == pid:  # field 4: the parent pid
                out.append(int(entry.name))
    return out


def tree(pid: int) -> list[int]:
    """`pid` and every descendant (also those in sessions of their own, as torchrun's workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children(p))
    return pids


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def crash(process) -> list[int]:
    """What a power cut does to a server: it and every process it started die at once, no cleanup."""
    pids = tree(process.pid)
    for pid in pids:  # freeze first so no process can react to another's death
        os.kill(pid, signal.SIGSTOP)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)
    return pids
