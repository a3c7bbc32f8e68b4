"""Keeping server paths out of answers: messages for clients never show where files live.

Library errors name the files they fail on (useful in the server log); before such a
message goes into an answer, a row the API shows, or a served report, the paths in it are
made relative to a known root (the data directory) or cut to their last component.
"""

from __future__ import annotations

import re
from pathlib import Path

# An absolute POSIX path of two or more components, or a Windows drive path. /api/... are
# our own URLs, quoted in messages on purpose.
_ABSOLUTE = re.compile(
    r"(?<![\w.~\-/])/(?!api/)(?:[^\s'\"/:,;()\[\]{}<>]+/)+[^\s'\"/:,;()\[\]{}<>]*"
    r"|\b[A-Za-z]:\\(?:[^\s'\"\\:,;()\[\]{}<>]+\\)*[^\s'\"\\:,;()\[\]{}<>]*"
)


def _last_part(match: re.Match) -> str:
    parts = [p for p in re.split(r"[/\\]", match.group(0)) if p]
    return parts[-1] if parts else "."


def redact_paths(text, roots=()) -> str:
    """`text` with every absolute path hidden: below one of `roots` (most specific first)
    it becomes relative to that root, anything else is cut to its last component."""
    if not isinstance(text, str) or not text:
        return text
    for root in sorted((str(Path(r)) for r in roots if r), key=len, reverse=True):
        text = text.replace(root + "/", "").replace(root, ".")
    return _ABSOLUTE.sub(_last_part, text)


def redact_all(value, roots=()):
    """redact_paths on every string inside a JSON-like value (dicts, lists)."""
    if isinstance(value, str):
        return redact_paths(value, roots)
    if isinstance(value, dict):
        return {k: redact_all(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_all(v, roots) for v in value]
    return value
