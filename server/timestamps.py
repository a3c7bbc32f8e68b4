"""One timestamp format in the API: ISO 8601 UTC text to the second, e.g. "2026-12-02T05:09:21Z".

The stores keep what suits them (datasets: ISO text, jobs and walks: epoch seconds, which
sort and subtract cheaply); every JSON answer converts with `iso_utc` at the edge.
"""

from __future__ import annotations

from datetime import datetime, timezone

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime(FORMAT)


def iso_utc(value) -> str | None:
    """Epoch seconds or stored ISO text -> the API's format; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return value  # not ours to reinterpret; show it as stored
        if stamp.tzinfo is None:  # we only ever store UTC
            stamp = stamp.replace(tzinfo=timezone.utc)
    else:
        stamp = datetime.fromtimestamp(float(value), tz=timezone.utc)
    return stamp.astimezone(timezone.utc).strftime(FORMAT)
