"""The selected job's progress chart in the Training panel, kept current while it trains,
and the panel's time-lapse buttons (operators/timelapse.py loads it).

The chart follows `watch`: each of its polls updates the job rows, and when the selected
job's step or state differs from what the chart shows, a worker downloads the chart again
(`core.media.ChartFollower` decides, at most every few seconds). The chart is a plain image
"Latent Chart job <id>", reloaded in place; it has no fake user, so it is not saved in the
.blend (the server draws it again whenever asked).
"""

from __future__ import annotations

import time

import bpy

from . import bridge, storage, watch
from .core import media
from .core.client import ClientError

CHART_IMAGE = "Latent Chart job {}"
CHART_ICON_SCALE = 10.0

follower = media.ChartFollower()
_said = set()  # errors already reported: once each, not every few seconds


def chart_image(job_id):
    return bpy.data.images.get(CHART_IMAGE.format(job_id)) if job_id else None


def tick():
    """Timer hook (bridge.tickers): fetch the selected job's chart when it is out of date.
    True while a fetch is under way or due."""
    if not bridge.connection["ok"]:
        return False
    scene = bpy.context.scene
    job = watch.selected_job(scene.latent) if scene is not None else None
    if job is None:
        return follower.in_flight is not None
    key = [job.step, job.state]
    now = time.monotonic()
    when = follower.next_fetch(job.job_id, key, now)
    if when is None:
        return follower.in_flight is not None
    if when > now:
        return True
    follower.started(job.job_id, now)
    try:
        client = bridge.make_client()
        folder, _temporary = storage.download_dir("charts", scene)
    except (ClientError, OSError):
        follower.failed()  # said by watch (connection) or by the sample grids (folder): try later
        return True
    bridge.runner.submit("fetch_chart", media.fetch_chart, client, job.job_id, folder, label="Training chart",
                         context={"scene": scene.name, "job_id": job.job_id, "key": key},
                         on_result=_chart_fetched, on_error=_chart_failed, on_cancelled=_chart_cancelled)
    return True


def _chart_fetched(msg):
    if msg.payload["unreachable"]:
        follower.failed()
        return
    follower.done(msg.context["job_id"], msg.context["key"])
    path = msg.payload["path"]
    if path is None:  # the job has not started: nothing to chart yet
        return
    img = bridge.load_image(path, CHART_IMAGE.format(msg.context["job_id"]))
    try:  # the panel shows the image's preview icon: make it show the new chart
        img.preview_ensure()
        img.preview.reload()
    except (AttributeError, RuntimeError):
        pass
    bridge.redraw()


def _chart_failed(msg):
    follower.failed()
    text = msg.payload["message"]
    if text not in _said:
        _said.add(text)
        bridge.notify("WARNING", f"The training chart could not be fetched: {text}")


def _chart_cancelled(msg):
    follower.failed()


def draw(layout, settings):
    """The selected job's chart and the Load Time-lapse buttons (in the Training panel)."""
    job = watch.selected_job(settings)
    if job is None:
        return
    box = layout.box()
    img = chart_image(job.job_id)
    if img is not None:
        box.label(text=f"Progress of '{job.title}'", icon="GRAPH")
        box.template_icon(icon_value=layout.icon(img), scale=CHART_ICON_SCALE)
    else:
        box.label(text="The progress chart appears once training has started", icon="GRAPH")
    box.label(text="Load Time-lapse (a frame per snapshot) as:", icon="FILE_MOVIE")
    row = box.row(align=True)
    for mode, label, _description in media.TIMELAPSE_MODES:
        row.operator("latent.load_timelapse", text=label).mode = mode


def _after_load():
    """Another .blend: its images are its own, so every chart is fetched again."""
    follower.forget()
    _said.clear()


def register():
    follower.forget()
    bridge.tickers.append(tick)
    bridge.after_load.append(_after_load)


def unregister():
    for hooks, fn in ((bridge.tickers, tick), (bridge.after_load, _after_load)):
        if fn in hooks:
            hooks.remove(fn)
    follower.forget()
