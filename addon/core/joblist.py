"""Merging the server's job and snapshot lists into the panel's rows, keeping the selection (no bpy).

The scene caches the lists as collection properties; these functions decide what the rows
hold and which row stays selected, so the bpy side only copies them over.
"""

from __future__ import annotations

from .api import JOB_FAILED, JOB_FINISHED_STATES, JOB_WATCHED_STATES
from .formatting import estimate_text, estimate_warning
from .messages import job_failure


def job_rows(jobs):
    """One dict per job from GET /jobs, with the fields of a LATENT_PG_job row."""
    rows = []
    for j in jobs:
        job_id = str(j["id"])
        step, steps = int(j["step"] or 0), int(j["steps"] or 0)
        eta = j["eta_s"]
        rows.append({
            "job_id": job_id,
            "title": str(j["title"] or job_id),
            "state": str(j["state"]),
            "step": step,
            "steps": steps,
            "kimg": float(j["kimg"] or 0.0),
            "progress": min(1.0, step / steps) if steps else 0.0,
            "eta_s": float(eta) if isinstance(eta, (int, float)) else -1.0,  # null until the first report
            "error": job_failure(j["error"]) if j["state"] == JOB_FAILED else "",
            "estimate": estimate_text(j["estimate"], steps),  # '' until the worker timed its first steps
            "warning": estimate_warning(j["estimate"]),
        })
    return rows


def snapshot_rows(snapshots):
    """One dict per snapshot from GET /jobs/{id}/snapshots, oldest first."""
    return [{"step": int(s["step"]), "kimg": float(s["kimg"] or 0.0)}
            for s in sorted(snapshots, key=lambda s: int(s["step"]))]


def index_of(keys, keep, fallback=0):
    """Where `keep` is in `keys` (the row to select again after a refresh), else `fallback`."""
    return keys.index(keep) if keep in keys else fallback


def finished_since(known_states, jobs):
    """Jobs of `jobs` that reached an end state since `known_states` ({job id: state}) was
    taken. Only jobs seen before in another state count, so each end is announced once."""
    out = []
    for j in jobs:
        before = known_states.get(str(j["id"]))
        if before is not None and before not in JOB_FINISHED_STATES and j["state"] in JOB_FINISHED_STATES:
            out.append(j)
    return out


def warned_since(known_warnings, jobs):
    """Jobs of `jobs` still going whose estimate brought a warning `known_warnings` ({job id:
    warning shown so far}) did not have: each warning is announced once, while it matters."""
    return [j for j in jobs
            if j["state"] in JOB_WATCHED_STATES and estimate_warning(j["estimate"])
            and not known_warnings.get(str(j["id"]))]


def newest_step(snapshots):
    """The step of the newest snapshot in a GET /jobs/{id}/snapshots list, or None."""
    return max((int(s["step"]) for s in snapshots), default=None)


def model_choice(job_label, steps, use_latest, pinned_step):
    """What Generate and Bake Walk will use, in words, for the panel."""
    if not steps:
        return f"{job_label}: no snapshot yet"
    if use_latest:
        return f"{job_label}: latest snapshot (step {max(steps)} now)"
    if pinned_step in steps:
        return f"{job_label}: step {pinned_step} (pinned)"
    return f"{job_label}: step {pinned_step} is not in its list: pick a snapshot"
