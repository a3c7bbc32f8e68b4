"""Merging the server's job and snapshot lists into the panel's rows, keeping the selection (no bpy).

The scene caches the lists as collection properties; these functions decide what the rows
hold and which row stays selected, so the bpy side only copies them over.
"""

from __future__ import annotations


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
        })
    return rows


def snapshot_rows(snapshots):
    """One dict per snapshot from GET /jobs/{id}/snapshots, oldest first."""
    return [{"step": int(s["step"]), "kimg": float(s["kimg"] or 0.0)}
            for s in sorted(snapshots, key=lambda s: int(s["step"]))]


def index_of(keys, keep, fallback=0):
    """Where `keep` is in `keys` (the row to select again after a refresh), else `fallback`."""
    return keys.index(keep) if keep in keys else fallback
