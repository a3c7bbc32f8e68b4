"""Errors raised while building or reading datasets (user-facing, one line each)."""

from __future__ import annotations


class DatasetError(ValueError):
    """Unusable dataset input or output: a message a user can act on."""


class DatasetBuildCancelled(DatasetError):
    """`should_stop()` asked the build to stop; nothing was written."""

    def __init__(self, message: str = "dataset build cancelled; no output was written") -> None:
        super().__init__(message)


class RejectedImage(Exception):
    """One source image is unusable; the build records `code`/`reason` and goes on.

    Not a ValueError: it never escapes the builder, it becomes a line in report.json.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
