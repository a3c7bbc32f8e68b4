"""Path relations the stores share."""

from __future__ import annotations

from pathlib import Path


def at_or_under(candidate, path) -> bool:
    """True when `candidate` is the file or folder `path`, or lies inside the folder `path`
    (both resolved: links and '..' do not hide a model file that is in use)."""
    candidate, path = Path(candidate).resolve(), Path(path).resolve()
    return candidate == path or path in candidate.parents
