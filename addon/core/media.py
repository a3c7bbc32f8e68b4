"""A training job's chart and time-lapse on the add-on's side (no bpy): the downloads the
worker threads run, and when the chart of the selected job is worth fetching again.

The chart is fetched when what the add-on holds is older than the job: another step or
another state (a running job's step moves with every poll of `watch`, which keeps the job
list current), at most once every CHART_MIN_INTERVAL_S. A job whose chart the server does
not have yet (404: it has not started) is asked again only when it moved on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile

from .client import ClientError

CHART_MIN_INTERVAL_S = 5.0
CHART_FILE = "chart_job{}.png"
TIMELAPSE_MODES = (
    ("MOVIECLIP", "Movie Clip", "Load the time-lapse MP4 as a movie clip (Movie Clip Editor, camera background)"),
    ("SEQUENCE", "Image Sequence", "Load the frames as an image sequence and show it on the active object's material"),
    ("VSE", "Video Sequencer", "Add the time-lapse MP4 as a movie strip in the scene's Video Sequencer"),
)
_FRAME_NAME = re.compile(r"^frame_(\d{5,})\.png$")


class MediaError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


class ChartFollower:
    """Which chart to fetch and when. `key` is what the chart shows, e.g. (step, state)."""

    def __init__(self, min_interval=CHART_MIN_INTERVAL_S):
        self.min_interval = min_interval
        self.held = {}  # job id -> key of the chart held (or found missing)
        self.last = {}  # job id -> when its chart was last asked for
        self.in_flight = None  # job id being fetched

    def next_fetch(self, job_id, key, now):
        """When to fetch `job_id`'s chart: None when the one held is current (or a fetch is
        under way), else a time (now or later)."""
        if not job_id or self.in_flight is not None or self.held.get(job_id) == key:
            return None
        return max(now, self.last.get(job_id, float("-inf")) + self.min_interval)

    def started(self, job_id, now):
        self.in_flight = job_id
        self.last[job_id] = now

    def done(self, job_id, key):
        """The fetch answered (a chart, or none yet): hold `key` until the job moves on."""
        self.in_flight = None
        self.held[job_id] = key

    def failed(self):
        """No answer: try again after the interval."""
        self.in_flight = None

    def forget(self):
        self.held.clear()
        self.last.clear()
        self.in_flight = None


# -- work functions (worker threads) -------------------------------------------------------

def fetch_chart(task, client, job_id, folder):
    """Download the job's chart into `folder`: {"job_id", "path", "unreachable"}, path None
    when the server has none yet (or did not answer: `watch` tells the user about that, so
    this says nothing and is tried again). A refusal from the server raises."""
    dest = os.path.join(folder, CHART_FILE.format(job_id))
    try:
        client.download_chart(job_id, dest)
    except ClientError as exc:
        if exc.status is None:
            return {"job_id": job_id, "path": None, "unreachable": True}
        if exc.status == 404 and exc.code == "chart_not_found":
            return {"job_id": job_id, "path": None, "unreachable": False}
        raise
    return {"job_id": job_id, "path": dest, "unreachable": False}


def extract_frames(zip_path, folder, should_stop=None):
    """The numbered PNGs of a frames.zip into `folder` (names checked: nothing else is
    written, nothing outside `folder`); returns (files in order, steps in order)."""
    files, steps = [], {}
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
            if "frames.json" in names:
                index = json.loads(zf.read("frames.json"))
                steps = {int(f["frame"]): int(f["step"]) for f in index.get("frames", [])}
            numbered = sorted((int(m.group(1)), n) for n in names if (m := _FRAME_NAME.match(n)))
            for number, name in numbered:
                if should_stop is not None and should_stop():
                    raise MediaError("Loading the time-lapse was cancelled")
                dest = os.path.join(folder, f"frame_{number:05d}.png")
                with zf.open(name) as src, open(dest + ".part", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(dest + ".part", dest)
                files.append(dest)
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError):
        raise MediaError("The time-lapse frames download is not a valid frames zip") from None
    if not files:
        raise MediaError("The time-lapse came back without frames")
    numbers = [int(_FRAME_NAME.match(os.path.basename(f)).group(1)) for f in files]
    if numbers != list(range(1, len(numbers) + 1)):
        raise MediaError(f"The time-lapse frames are not numbered 1 to {len(numbers)}")
    return files, [steps.get(n) for n in numbers]


def fetch_timelapse(task, client, job_id, mode, folder):
    """Download the job's time-lapse into `folder` (a new folder of its own): the MP4 for a
    movie clip or a sequencer strip, the numbered frames for an image sequence."""
    def progress(done, total):
        if total:
            task.progress(done / total, f"{done / 1e6:.1f} of {total / 1e6:.1f} MB")

    os.makedirs(folder, exist_ok=True)
    if mode == "SEQUENCE":
        zpath = os.path.join(folder, ".frames.zip")
        try:
            client.download_timelapse_frames(job_id, zpath, on_progress=progress, should_stop=task.should_stop)
            files, steps = extract_frames(zpath, folder, task.should_stop)
        finally:
            if os.path.exists(zpath):
                os.remove(zpath)
        return {"job_id": job_id, "mode": mode, "folder": folder, "files": files, "count": len(files),
                "steps": steps}
    dest = os.path.join(folder, f"timelapse_job{job_id}.mp4")
    client.download_timelapse(job_id, dest, on_progress=progress, should_stop=task.should_stop)
    return {"job_id": job_id, "mode": mode, "folder": folder, "path": dest}
