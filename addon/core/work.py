"""Work functions that run on worker threads (no bpy).

Each takes the Task first (progress, cancellation), then plain data, and returns plain
data for the main-thread handler. Files are written to temp names and renamed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import zipfile

from . import api
from .client import ClientError
from .files import is_image
from .formatting import describe_health


class WorkError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def check_connection(task, client):
    task.progress(0.1, "contacting server")
    info = client.health()
    # /health needs no token: ask an authenticated route so a wrong token shows up now
    client.list_jobs()
    return {"health": info, "text": describe_health(info)}


def zip_folder(task, folder, dest, fraction_span=(0.0, 0.3)):
    files = []
    for root, _dirs, names in os.walk(folder):
        for name in sorted(names):
            if is_image(name):
                files.append(os.path.join(root, name))
    if not files:
        raise WorkError(f"There are no images in {folder}")
    lo, hi = fraction_span
    tmp = dest + ".part"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, path in enumerate(sorted(files)):
            task.check()
            zf.write(path, os.path.relpath(path, folder))
            if i % 16 == 0:
                task.progress(lo + (hi - lo) * (i + 1) / len(files), f"zipping {i + 1}/{len(files)}")
    os.replace(tmp, dest)
    return len(files)


def upload_and_prepare(task, client, folder, name, options, preview_dir, poll_interval=0.5, timeout=1800):
    """Zip `folder`, upload it, prepare it on the server and fetch report + preview."""
    if not os.path.isdir(folder):
        raise WorkError(f"The dataset folder {folder} does not exist")
    tmpdir = tempfile.mkdtemp(prefix="latent-upload-")
    try:
        zip_path = os.path.join(tmpdir, "dataset.zip")
        count = zip_folder(task, folder, zip_path)
        task.progress(0.3, f"uploading {count} images")

        def sent(done, total):
            task.progress(0.3 + 0.4 * done / max(total, 1), f"uploading {done * 100 // max(total, 1)}%")

        dataset = client.upload_dataset(zip_path, name=name, on_progress=sent, should_stop=task.should_stop)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    dataset_id = dataset["id"]
    task.progress(0.7, "preparing")
    client.prepare_dataset(dataset_id, options)
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_dataset(dataset_id)
        state = info["state"]
        if state == api.DATASET_READY:
            break
        if state == api.DATASET_FAILED:
            raise WorkError(f"The server could not prepare the dataset: {info['error'] or 'see the server log'}")
        if time.monotonic() > deadline:
            raise WorkError("Preparing the dataset took too long")
        task.progress(0.7 + 0.25 * min(1.0, info["progress"] or 0.0), f"preparing ({state})")
        task.sleep(poll_interval)
    report = client.dataset_report(dataset_id)
    preview = os.path.join(preview_dir, f"preview_{dataset_id}.png")
    client.download_preview(dataset_id, preview)
    return {"dataset": info, "report": report, "preview": preview, "uploaded": count}


def fetch_models(task, client):
    data = client.list_models()
    return {"models": data[api.MODELS], "refused": data[api.REFUSED]}


def start_job(task, client, body):
    job = client.create_job(body)
    return {"job": job, "jobs": client.list_jobs()[api.JOBS]}


def job_action(task, client, job_id, action, steps=None):
    if action == "cancel":
        job = client.cancel_job(job_id)
    elif action == "resume":
        job = client.resume_job(job_id, steps)
    else:
        raise WorkError(f"unknown job action {action}")
    return {"job": job, "jobs": client.list_jobs()[api.JOBS]}


def refresh_jobs(task, client, watch_job_id, grid_dir, last_step=None):
    """One poll: the job list, the watched job's snapshots and (if new) its latest grid."""
    jobs = client.list_jobs()[api.JOBS]
    result = {"jobs": jobs, "snapshots": None, "grid": None, "job_id": watch_job_id}
    if watch_job_id:
        snaps = client.list_snapshots(watch_job_id)[api.SNAPSHOTS]
        result["snapshots"] = snaps
        if snaps:
            newest = max(s["step"] for s in snaps)
            if last_step is None or newest != last_step:
                dest = os.path.join(grid_dir, f"grid_{watch_job_id}.png")
                try:
                    client.download_grid(watch_job_id, dest)
                except ClientError as exc:
                    if exc.status != 404:
                        raise
                    # the snapshot is being written right now: try again on the next poll
                else:
                    result["grid"] = dest
                    result["grid_step"] = newest
    return result


def watch_jobs(task, client, watch_job_id, grid_dir, interval=2.0):
    """Keep polling while any job is queued/running; posts each poll as progress."""
    last_step = None
    while True:
        result = refresh_jobs(task, client, watch_job_id, grid_dir, last_step)
        if result["grid"]:
            last_step = result["grid_step"]
        active = [j for j in result["jobs"] if j["state"] in api.JOB_WATCHED_STATES]
        task.progress(None, "watching", poll=result)
        if not active:
            snaps = result["snapshots"] or []
            newest = max((x["step"] for x in snaps), default=None)
            if newest is not None and newest != last_step:  # the last grid was not ready: one more try
                task.sleep(interval)
                result = refresh_jobs(task, client, watch_job_id, grid_dir, last_step)
            return result
        task.sleep(interval)


def generate(task, client, body, out_dir, prefix):
    """POST /generate; returns the written PNG paths (one per seed)."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".{prefix}.download")
    ctype = client.generate(body, tmp, should_stop=task.should_stop)
    seeds = body["seeds"]
    paths = []
    try:
        if ctype.startswith("application/zip"):  # several seeds: seedNNNN.png each
            with zipfile.ZipFile(tmp) as zf:
                names = sorted(n for n in zf.namelist() if n.lower().endswith(".png"))
                for i, name in enumerate(names):
                    m = re.findall(r"\d+", os.path.basename(name))
                    seed = int(m[-1]) if m else seeds[i]
                    dest = os.path.join(out_dir, f"{prefix}_seed{seed:06d}.png")
                    with zf.open(name) as src, open(dest + ".part", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    os.replace(dest + ".part", dest)
                    paths.append((seed, dest))
        else:  # one seed: image/png
            seed = seeds[0]
            dest = os.path.join(out_dir, f"{prefix}_seed{seed:06d}.png")
            os.replace(tmp, dest)
            paths.append((seed, dest))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if not paths:
        raise WorkError("The server answered without images")
    return {"images": paths}


def bake_walk(task, client, body, out_dir, prefix="walk", poll_interval=0.5, timeout=3600):
    """POST /walks, wait for it, download the frames and name them `<prefix>_<frame:04d>.png`."""
    walk = client.create_walk(body)
    walk_id = walk["id"]
    deadline = time.monotonic() + timeout
    while True:
        state = walk["state"]
        if state == api.WALK_COMPLETED:
            break
        if state == api.WALK_FAILED:
            raise WorkError(f"The walk failed: {walk['error'] or 'see the server log'}")
        total, done = walk["frames_total"], walk["frames_done"]
        task.progress(0.8 * done / max(1, total), f"rendering frame {done}/{total}")
        if time.monotonic() > deadline:
            raise WorkError("The walk took too long")
        task.sleep(poll_interval)
        walk = client.get_walk(walk_id)
    os.makedirs(out_dir, exist_ok=True)
    for old in os.listdir(out_dir):
        if old.startswith(prefix + "_") and old.endswith(".png"):
            os.remove(os.path.join(out_dir, old))
    zpath = os.path.join(out_dir, f".{prefix}.zip")
    task.progress(0.8, "downloading frames")
    client.download_walk(walk_id, zpath, should_stop=task.should_stop)
    frames = []
    try:
        with zipfile.ZipFile(zpath) as zf:
            names = sorted(n for n in zf.namelist() if n.lower().endswith(".png"))
            for i, name in enumerate(names):
                task.check()
                m = re.findall(r"\d+", os.path.basename(name))
                frame = int(m[-1]) if m else body["frame_start"] + i
                dest = os.path.join(out_dir, f"{prefix}_{frame:04d}.png")
                with zf.open(name) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                frames.append(frame)
    except zipfile.BadZipFile:
        raise WorkError("The walk frames download is not a valid zip") from None
    finally:
        if os.path.exists(zpath):
            os.remove(zpath)
    if not frames:
        raise WorkError("The walk came back without frames")
    frames.sort()
    expected = list(range(frames[0], frames[0] + len(frames)))
    if frames != expected:
        raise WorkError(f"The walk frames are not consecutive: {frames[:5]}...")
    return {"folder": out_dir, "prefix": prefix, "first": frames[0], "count": len(frames),
            "files": [os.path.join(out_dir, f"{prefix}_{f:04d}.png") for f in frames], "walk_id": walk_id}
