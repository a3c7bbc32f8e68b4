"""A job's time-lapse and progress chart over HTTP (made by gan_core.reports in its run folder).

    GET /jobs/{id}/timelapse.mp4         the snapshot grids in order, H.264 (the worker rebuilds
                                         it after every snapshot)
    GET /jobs/{id}/timelapse/frames.zip  the same frames as PNGs numbered 1..N (an image sequence)
    GET /jobs/{id}/chart.png             losses, regularisers, ADA, metrics and speed; drawn here
                                         on request, again only when progress.jsonl has changed

Each answers 404 (`timelapse_not_found`, `chart_not_found`) until the job has written what
it needs. `media_urls(job)` gives the job document its links to them.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_file

from gan_core.reports import chart, timelapse
from server.config import API_PREFIX
from server.errors import ApiError
from server.jobs import store
from server.openapi import doc
from server.state import current_state

bp = Blueprint("job_media", __name__, url_prefix=API_PREFIX)
PNG, MP4, ZIP = "image/png", "video/mp4", "application/zip"


def media_urls(job: dict) -> dict:
    """The links of the job document: null until there is something behind them."""
    base = f"{API_PREFIX}/jobs/{job['id']}"
    run_dir = Path(job["run_dir"])
    return {
        "timelapse_url": f"{base}/timelapse.mp4" if timelapse.video_path(run_dir).is_file() else None,
        "timelapse_frames_url": f"{base}/timelapse/frames.zip" if timelapse.has_frames(run_dir) else None,
        "chart_url": f"{base}/chart.png" if chart.progress_path(run_dir).is_file() else None,
    }


def _run_dir(job_id: int) -> Path:
    job = store.get_job(current_state().db, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job with id {job_id}")
    return Path(job["run_dir"])


def _no_timelapse(job_id: int) -> ApiError:
    return ApiError(404, "timelapse_not_found", f"job {job_id} has no time-lapse yet: it gets a frame at each "
                                                "snapshot, once training has started")


@bp.get("/jobs/<int:job_id>/timelapse.mp4")
@doc("Time-lapse of the job's sample grids, one frame per snapshot with its step (H.264 MP4)",
     ok={200: ("MP4 video", MP4)}, errors=(401, 404))
def timelapse_video(job_id: int):
    path = timelapse.video_path(_run_dir(job_id))
    if not path.is_file():
        raise _no_timelapse(job_id)
    return send_file(path, mimetype=MP4, max_age=0, download_name=f"job{job_id}-timelapse.mp4")


@bp.get("/jobs/<int:job_id>/timelapse/frames.zip")
@doc("The time-lapse frames as PNGs numbered frame_00001.png... in step order, with frames.json "
     "(number -> step): an image sequence", ok={200: ("Zip of PNG frames", ZIP)}, errors=(401, 404))
def timelapse_frames(job_id: int):
    path = timelapse.frames_zip(_run_dir(job_id))
    if path is None:
        raise _no_timelapse(job_id)
    return send_file(path, mimetype=ZIP, max_age=0, as_attachment=True,
                     download_name=f"job{job_id}-timelapse-frames.zip")


@bp.get("/jobs/<int:job_id>/chart.png")
@doc("Chart of the job's progress: G/D losses, R1 and path length, ADA p and r_t, metrics, sec/kimg",
     ok={200: ("PNG image", PNG)}, errors=(401, 404, 500))
def progress_chart(job_id: int):
    try:
        path = chart.ensure_chart(_run_dir(job_id))
    except chart.ChartError as exc:
        raise ApiError(500, "internal_error", f"the chart cannot be drawn on this server: {exc}") from None
    if path is None:
        raise ApiError(404, "chart_not_found", f"job {job_id} has no progress to chart yet: it has not started")
    return send_file(path, mimetype=PNG, max_age=0)
