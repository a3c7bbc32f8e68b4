"""Text for the UI made from server answers: durations, sizes, estimates, health, dataset reports,
model lists."""

from __future__ import annotations

import math
import textwrap

from .api import LIBRARY_MODEL_KINDS, SCRATCH_MODEL

SCRATCH_ITEM = (SCRATCH_MODEL, "From scratch", "Train a new model from random weights")


def eta(seconds):
    """'1h05m' / '4m09s'; '-' when unknown (negative)."""
    if seconds < 0:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def duration(seconds):
    """'58 s' / '12 min' / '40.1 h' / '3.2 days': a long wait in the words the CLI uses."""
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def size(nbytes):
    """'180 MB' / '2.0 GB' (decimal units, as disks are sold; a unit up where rounding reaches 1000)."""
    if nbytes >= 999.5e6:
        return f"{nbytes / 1e9:.1f} GB"
    if nbytes >= 999.5e3:
        return f"{nbytes / 1e6:.0f} MB"
    return f"{max(1, round(nbytes / 1e3))} kB"


def estimate_text(estimate, steps):
    """A job's measured estimate for the panel: 'about 40.1 h for 4999 steps, 180 MB per
    snapshot, 2.0 GB at the end'; '' until the server has one."""
    if not estimate:
        return ""
    left = max(0, int(steps) - int(estimate["step"]))
    return (f"about {duration(estimate['eta_s'])} for {left} steps, {size(estimate['snapshot_bytes'])} per snapshot, "
            f"{size(estimate['disk_bytes'])} at the end")


def estimate_warning(estimate):
    """The estimate's warning (a slow CPU run) as a sentence of its own; '' when there is none."""
    warning = str((estimate or {}).get("warning") or "").strip()
    return (warning[0].upper() + warning[1:]) if warning else ""


def wrap(text, width=60):
    """`text` as panel lines of about `width` characters (a label does not wrap by itself)."""
    return textwrap.wrap(text, width) or [""]


def describe_health(info):
    """One line for the UI from GET /health: 'Server 0.1.0 on NVIDIA H100 (cuda)'."""
    device, name = info["device"], info["device_name"]
    where = f"{name} ({device})" if name and str(name).lower() != str(device).lower() else str(name or device)
    return f"Server {info['version']} on {where}"


def summarize_report(report, max_lines=50):
    """(summary line, rejected lines) from a dataset's report.json."""
    rejected = report["rejected"]
    lines = [f"{r['file']}: {r['reason']}" for r in rejected[:max_lines]]
    summary = f"{report['counts']['accepted']} accepted, {len(rejected)} rejected"
    if report["resolution"]:
        summary += f", {report['resolution']}px"
    return summary, "\n".join(lines)


def model_items(models):
    """EnumProperty items for the base-model list: 'From scratch' first, then the server's models."""
    items = [SCRATCH_ITEM]
    seen = {SCRATCH_MODEL}
    for m in models:
        mid = str(m["id"])
        if mid in seen:  # the server lists "scratch" too
            continue
        seen.add(mid)
        res = m["resolution"]
        label = m["name"] or mid
        items.append((mid, f"{label} ({res}px)" if res else label, f"{m['kind']}: {mid}"))
    return items


def library_models(models):
    """{id: name} of the models the server's models folder holds (the ones a user may delete)."""
    return {str(m["id"]): m["name"] or str(m["id"]) for m in models if m["kind"] in LIBRARY_MODEL_KINDS}


def model_label(model):
    """A resolved model reference in words: 'job 3 step 60' or the base model's id."""
    if model.get("job_id") is not None:
        return f"job {model['job_id']} step {model['step']}" if model.get("step") is not None else f"job {model['job_id']}"
    return str(model.get("model_id", "?"))


def safe_name(text, limit=40):
    """`text` as a file or folder name: letters, digits, '-' and '_' only."""
    out = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))[:limit]
    return out or "untitled"


def still_name(seed, model):
    """Datablock name of a generated image: the seed and the model it came from, so an image
    from another snapshot never takes the place of one already used."""
    return f"Latent seed {seed} ({model_label(model)})"[:63]  # Blender names hold 63 bytes


def still_file(seed, model):
    return f"latent_{safe_name(model_label(model))}_seed{seed:06d}.png"
