"""How long a run will take and how much disk it will fill, from its first measured steps.

The training loop times a few steps after the first (which pays for warm-up) and reports
this once, so the CLI, the server and the add-on can show it before the user waits hours.
"""

from __future__ import annotations

import math

MEASURED_STEPS = 3  # steps timed after the first one
SLOW_RUN_S = 3 * 3600  # a CPU run longer than this gets a suggestion


def snapshots_to_write(step: int, steps: int, snapshot_every: int) -> int:
    """Snapshots a run at `step` still writes: every `snapshot_every` steps and at the end."""
    if steps <= step:
        return 0
    periodic = steps // snapshot_every - step // snapshot_every
    return periodic + (0 if steps % snapshot_every == 0 else 1)


def estimate(*, step: int, steps: int, sec_per_step: float, snapshot_bytes: int, snapshot_every: int,
             snapshots_now: int, keep: int | None, keeps_best: bool, device_type: str,
             timelapse_frames: int = 0, timelapse_bytes: int = 0) -> dict:
    """The "estimate" event: time per step, time left, disk per snapshot, and the disk the run
    takes when it ends (`snapshots_now`: those on disk; `keep`: the retention).

    The time-lapse (`timelapse_frames` frames and its video, `timelapse_bytes` in all, on disk
    now) gains a frame per snapshot and keeps every one, whatever the retention: it is
    projected at its present size per frame."""
    remaining = max(0, steps - step)
    eta_s = remaining * sec_per_step
    to_write = snapshots_to_write(step, steps, snapshot_every)
    kept = snapshots_now + to_write
    if keep is not None:
        kept = min(kept, keep + int(keeps_best))
    timelapse_end = 0
    if timelapse_frames > 0:
        timelapse_end = round(timelapse_bytes / timelapse_frames * (timelapse_frames + to_write))
    warning = None
    if device_type == "cpu" and eta_s > SLOW_RUN_S:
        warning = (f"on this CPU the run needs about {format_duration(eta_s)}: choose a smaller preset "
                   "(tiny or small) or resolution, fewer steps, or train on a GPU")
    return {"event": "estimate", "step": step, "steps": steps, "sec_per_step": sec_per_step, "eta_s": eta_s,
            "snapshot_bytes": snapshot_bytes, "snapshots_to_write": to_write, "snapshots_kept": kept,
            "timelapse_bytes": timelapse_end, "disk_bytes": kept * snapshot_bytes + timelapse_end,
            "warning": warning}


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
