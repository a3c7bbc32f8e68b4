"""What the user reads when the server reports a problem (no bpy).

Text from the server (error messages, a dataset's or a job's `error`) is written for
people, but it can still carry paths on the server's machine, Python exception names or
the dataset builder's reject codes. These functions turn it into sentences that say what
happened and what to do; the raw text stays in the server's log.
"""

from __future__ import annotations

import re

# Absolute paths on the server's disk (POSIX or Windows), shown by their last component
# only; the API's own routes (/api/v1/...) are addresses, not files, and stay.
_PATH = re.compile(r"(?<![\w/])(?!/api/)(?:[A-Za-z]:)?[\\/](?:[^\s\\/:'\"()]+[\\/])+([^\s\\/:'\"(),]*)")
# "SomeError: " at the start of a clause: a program's word, not the user's.
_EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception|Cancelled)\b:\s*")
_INTERNAL = re.compile(r"internal error|crashed|stopped unexpectedly|exit code", re.IGNORECASE)

# The dataset builder's reject codes (docs/INTERFACES.md, report.json) as words.
REJECT_WORDS = {
    "unreadable": "could not be read",
    "not_image": "are not images",
    "too_large": "are too large",
    "too_small": "are smaller than the resolution",
    "uniform": "are one flat colour",
    "duplicate": "are duplicates",
    "near_duplicate": "are near duplicates",
    "unsafe_name": "have unsafe file names",
    "no_class_folder": "are not in a class folder",
}
_REJECT_COUNT = re.compile(r"(\d+) ([a-z_]+)")

CHECK_SERVER_LOG = "the server's log has the details"


def server_text(text):
    """`text` without server paths or exception names."""
    return _EXCEPTION_NAME.sub("", _PATH.sub(lambda m: m.group(1) or "a server folder", str(text or ""))).strip()


def _reject_summary(summary):
    """'12 uniform, 3 too_small' -> '12 are one flat colour, 3 are smaller than the resolution'."""
    def words(match):
        count, code = match.group(1), match.group(2)
        return f"{count} {REJECT_WORDS.get(code, code.replace('_', ' '))}"
    return _REJECT_COUNT.sub(words, summary)


def dataset_failure(error):
    """The message for a dataset whose preparation failed on the server."""
    raw = str(error or "").strip()
    if not raw:
        return f"The server could not prepare the dataset ({CHECK_SERVER_LOG}). Upload & Prepare again."
    if _INTERNAL.search(raw):
        return (f"The server hit an internal problem while preparing the dataset ({CHECK_SERVER_LOG}). "
                "Upload & Prepare again; if it fails again, report it with the server's log.")
    unusable = re.match(r"no usable images in .*?: (.*?)(?:; (.*))?$", raw)
    if unusable:
        hint = f" Hint: {unusable.group(2)}." if unusable.group(2) else ""
        return (f"None of the uploaded images could be used: {_reject_summary(unusable.group(1))}.{hint} "
                "Change the renders or the dataset settings, then Upload & Prepare again.")
    if raw.startswith("no images found"):
        return "The upload holds no images the server can read. Render the dataset (or pick a folder of images) again."
    return f"The server could not prepare the dataset: {server_text(raw)}"


def job_failure(error):
    """The reason shown for a training job that failed."""
    raw = str(error or "").strip()
    if not raw:
        return f"Training stopped with an error ({CHECK_SERVER_LOG})"
    if _INTERNAL.search(raw):
        return f"Training stopped because of a problem on the server ({CHECK_SERVER_LOG}). Continue the job to retry."
    return server_text(raw)


# What to do after the server refused a request, by its error code (server/errors.py).
HINTS = {
    "snapshot_not_found": "Refresh Jobs and pick a snapshot the job has",
    "job_not_found": "The job is gone from the server: Refresh Jobs",
    "dataset_not_found": "Upload & Prepare the dataset again",
    "dataset_gone": "Upload & Prepare the dataset again",
    "dataset_not_ready": "Wait until the dataset is prepared",
    "model_not_found": "Refresh Models and choose another one",
    "unknown_base_model": "Refresh Models and choose another one",
    "unknown_dataset": "Upload & Prepare the dataset again",
    "payload_too_large": "Use fewer or smaller images, or raise the server's upload limit",
    "illegal_state_transition": "Refresh Jobs to see the job's current state",
    "walk_not_ready": "Wait for the walk to finish",
    # deletes refused while the thing is in use (nothing was removed)
    "job_active": "Nothing was deleted",
    "model_in_use": "Nothing was deleted; Refresh Jobs to see which jobs are still going",
    "walk_active": "Nothing was deleted",
    "dataset_in_use": "Nothing was deleted; Refresh Jobs to see which jobs are still going",
    "dataset_busy": "Nothing was deleted; wait until the dataset is prepared",
}


def refusal(status, code, message):
    """One sentence for an HTTP error answer: what the server said and what to do."""
    if status is not None and status >= 500 and status not in (503, 507):
        return (f"The server hit an internal problem ({CHECK_SERVER_LOG}). Try again; "
                "if it keeps happening, report it with the server's log.")
    text = server_text(message) or "no reason given"
    hint = HINTS.get(code or "")
    return f"The server refused: {text.rstrip('.')}" + (f". {hint}." if hint else "")
