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
from .estimate import Estimate
from .files import is_image
from .formatting import describe_health, still_file
from .joblist import newest_step
from .messages import CHECK_SERVER_LOG, dataset_failure, server_text


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
    pace = Estimate()
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, path in enumerate(sorted(files)):
            task.check()
            zf.write(path, os.path.relpath(path, folder))
            if i % 16 == 0:
                task.progress(lo + (hi - lo) * (i + 1) / len(files), "zipping " + pace.text(i + 1, len(files), "image"))
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
        pace = Estimate()

        def sent(done, total):
            task.progress(0.3 + 0.4 * done / max(total, 1), pace.fraction_text(done / max(total, 1), "uploading"))

        dataset = client.upload_dataset(zip_path, name=name, on_progress=sent, should_stop=task.should_stop)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    dataset_id = dataset["id"]
    task.progress(0.7, "preparing")
    client.prepare_dataset(dataset_id, options)
    deadline = time.monotonic() + timeout
    pace = Estimate()
    while True:
        info = client.get_dataset(dataset_id)
        state = info["state"]
        if state == api.DATASET_READY:
            break
        if state == api.DATASET_FAILED:
            raise WorkError(dataset_failure(info["error"]))
        if time.monotonic() > deadline:
            raise WorkError("Preparing the dataset took too long: see whether the server is still working on it")
        fraction = min(1.0, info["progress"] or 0.0)
        task.progress(0.7 + 0.25 * fraction, pace.fraction_text(fraction, "preparing"))
        task.sleep(poll_interval)
    report = client.dataset_report(dataset_id)
    preview = os.path.join(preview_dir, f"preview_{dataset_id}.png")
    client.download_preview(dataset_id, preview)
    return {"dataset": info, "report": report, "preview": preview, "uploaded": count}


def fetch_models(task, client, rescan=False):
    """The base-model list; `rescan` first has the server import what is new in its models folder."""
    data = client.rescan_models() if rescan else client.list_models()
    return {"models": data[api.MODELS], "refused": data[api.REFUSED], "rescanned": rescan}


def _delete(call, thing_id, gone_code):
    """Run a DELETE; True when it removed the thing, False when the server no longer had it
    (gone is what the user asked for; any other refusal is raised with its message)."""
    try:
        call(thing_id)
    except ClientError as exc:
        if exc.status == 404 and exc.code == gone_code:
            return False
        raise
    return True


def delete_job(task, client, job_id):
    """Delete a finished job and its run folder; its snapshots leave the job and model lists."""
    existed = _delete(client.delete_job, job_id, "job_not_found")
    return {"job_id": job_id, "existed": existed, "jobs": client.list_jobs()[api.JOBS], **fetch_models(task, client)}


def delete_model(task, client, model_id):
    existed = _delete(client.delete_model, model_id, "model_not_found")
    return {"model_id": model_id, "existed": existed, **fetch_models(task, client)}


def delete_dataset(task, client, dataset_id):
    """The server's copy of a dataset (its upload and training zip); the images on this disk stay."""
    return {"dataset_id": dataset_id, "existed": _delete(client.delete_dataset, dataset_id, "dataset_not_found")}


def delete_walk(task, client, walk_id):
    """The server's copy of a walk (its frames there); the frames the add-on downloaded stay."""
    return {"walk_id": walk_id, "existed": _delete(client.delete_walk, walk_id, "walk_not_found")}


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


def poll_jobs(task, client, job_id, grids_held, grid_dir):
    """One look at training: the job list, the snapshots of `job_id` (the selected job) and
    the newest sample grid of each job in `grids_held` ({job id: step of the grid the add-on
    holds, or None}) when a newer one exists. The main thread decides when to look again."""
    jobs = client.list_jobs()[api.JOBS]
    known = {str(j["id"]) for j in jobs}
    result = {"jobs": jobs, "job_id": job_id, "snapshots": None, "grids": {}}
    if job_id and job_id in known:
        result["snapshots"] = client.list_snapshots(job_id)[api.SNAPSHOTS]
    for grid_job, held_step in grids_held.items():
        if grid_job not in known:
            continue
        snaps = result["snapshots"] if grid_job == job_id else client.list_snapshots(grid_job)[api.SNAPSHOTS]
        step = newest_step(snaps or [])
        if step is None or step == held_step:
            continue
        dest = os.path.join(grid_dir, f"grid_job{grid_job}.png")
        try:
            client.download_snapshot_grid(grid_job, step, dest)
        except ClientError as exc:
            if exc.status != 404:
                raise
            continue  # the snapshot is listed but its grid is still being written: next poll
        result["grids"][grid_job] = {"step": step, "path": dest}
    return result


def resolve_model(client, model):
    """`model` with a job's "latest snapshot" turned into its step, asked for now, so the
    request names exactly the network it is made from (and the user sees which)."""
    if model.get("job_id") is None or model.get("step") is not None:
        return dict(model)
    step = newest_step(client.list_snapshots(model["job_id"])[api.SNAPSHOTS])
    if step is None:
        raise WorkError(f"Job {model['job_id']} has no snapshot yet: wait until training writes its first one")
    return {**model, "step": step}


def generate(task, client, body, out_dir):
    """POST /generate from the resolved model; returns the written PNG paths (one per seed)."""
    body = {**body, "model": resolve_model(client, body["model"])}
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".generate-{task.id}.download")
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
                    dest = os.path.join(out_dir, still_file(seed, body["model"]))
                    with zf.open(name) as src, open(dest + ".part", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    os.replace(dest + ".part", dest)
                    paths.append((seed, dest))
        else:  # one seed: image/png
            seed = seeds[0]
            dest = os.path.join(out_dir, still_file(seed, body["model"]))
            os.replace(tmp, dest)
            paths.append((seed, dest))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if not paths:
        raise WorkError("The server answered without images")
    return {"images": paths, "model": body["model"]}


def bake_walk(task, client, body, out_dir, prefix="walk", poll_interval=0.5, timeout=3600):
    """POST /walks, wait for it, download the frames into `out_dir` as `<prefix>_<frame:04d>.png`.

    `out_dir` is this walk's own folder: a file already there is an error, never replaced,
    so a bake can never overwrite frames another walk (or another .blend) uses."""
    os.makedirs(out_dir, exist_ok=True)
    if any(name.startswith(prefix + "_") for name in os.listdir(out_dir)):
        raise WorkError(f"The walk folder {out_dir} already holds frames: nothing was overwritten. Bake again.")
    body = {**body, "model": resolve_model(client, body["model"])}
    walk = client.create_walk(body)
    walk_id = walk["id"]
    deadline = time.monotonic() + timeout
    pace = Estimate()
    while True:
        state = walk["state"]
        if state == api.WALK_COMPLETED:
            break
        if state == api.WALK_FAILED:
            raise WorkError(f"The server could not render the walk: {server_text(walk['error'] or CHECK_SERVER_LOG)}")
        total, done = walk["frames_total"], walk["frames_done"]
        task.progress(0.8 * done / max(1, total), "rendering " + pace.text(done, total, "frame"))
        if time.monotonic() > deadline:
            raise WorkError("The walk took too long: see whether the server is still rendering it")
        task.sleep(poll_interval)
        walk = client.get_walk(walk_id)
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
                with zf.open(name) as src, open(dest + ".part", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(dest + ".part", dest)
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
            "files": [os.path.join(out_dir, f"{prefix}_{f:04d}.png") for f in frames], "walk_id": walk_id,
            "model": body["model"]}
