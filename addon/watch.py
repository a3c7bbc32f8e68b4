"""Following the server: the connection, the job list, the selected job's snapshots and
sample grids, and the news that a training ended (or, by its first steps, would take very long).

One poll runs at a time on a worker (`core.work.poll_jobs`); the main-thread timer starts
the next when `core.poller.PollSchedule` says so: every few seconds while a job runs,
backing off while the server does not answer, resuming by itself when it does. The
snapshot list always belongs to the selected job: selecting another job empties it and
polls at once. Update callbacks of the selections land here too (`_syncing` tells them
apart from the add-on's own changes).
"""

from __future__ import annotations

import time

import bpy

from . import bridge, storage
from .core import api, joblist, work
from .core.client import ClientError
from .core.formatting import estimate_warning
from .core.poller import PollSchedule

SAMPLE_IMAGE = "Latent Samples job {}"  # one image per job, replaced as its grid improves
GRID_ATTEMPTS = 3  # polls that may look for the final grid of a job that just ended

schedule = PollSchedule()
_state = {"scene": "", "task": None, "loaded": None, "check": 0, "started": False}
_grid_steps = {}  # job id -> step of the grid image this session holds
_wanted_grids = {}  # job id that just ended -> polls left to fetch its final grid
_syncing = False  # True while the add-on itself sets a selection: update callbacks stay out


class _Syncing:
    def __enter__(self):
        global _syncing
        self._was, _syncing = _syncing, True

    def __exit__(self, *exc):
        global _syncing
        _syncing = self._was


def _scene(name=None):
    return bpy.data.scenes.get(name or _state["scene"]) or bpy.context.scene


def selected_job_id(settings):
    if 0 <= settings.job_index < len(settings.jobs):
        return settings.jobs[settings.job_index].job_id
    return ""


def selected_job(settings):
    return settings.jobs[settings.job_index] if 0 <= settings.job_index < len(settings.jobs) else None


# -- the connection --------------------------------------------------------------------

def check_connection(context=None, client=None, quiet=False):
    """Ask the server who it is (and, with the token, for its jobs). `quiet` (at start-up
    and after opening a file) reports nothing when there is no server."""
    if client is None:
        try:
            client = bridge.make_client(context)
        except (ClientError, KeyError) as exc:  # KeyError: the preferences are not there yet
            bridge.set_connected(False, "Not connected")
            if not quiet:
                bridge.notify("ERROR", getattr(exc, "message", str(exc)), key="connection")
            return None
    _state["check"] += 1  # only the newest check's answer counts
    scene = (context or bpy.context).scene
    if not quiet:
        bridge.set_connected(bridge.connection["ok"], "Checking...")
    return bridge.runner.submit("check_connection", work.check_connection, client, label="Check connection",
                                context={"epoch": _state["check"], "quiet": quiet, "scene": scene.name},
                                on_result=_connected, on_error=_not_connected)


def _connected(msg):
    if msg.context["epoch"] != _state["check"]:
        return
    bridge.set_connected(True, msg.payload["text"])
    bridge.connection["text"] = msg.payload["text"]
    bridge.clear_message("connection")
    if not msg.context["quiet"]:
        bridge.notify("INFO", f"Connected: {msg.payload['text']}")
    scene = _scene(msg.context["scene"])
    if schedule.failures or _worth_following(scene.latent):
        follow(scene)


def _not_connected(msg):
    if msg.context["epoch"] != _state["check"]:
        return
    bridge.set_connected(False, "Not connected")
    if not msg.context["quiet"]:
        bridge.notify("ERROR", msg.payload["message"], key="connection")


# -- polling -----------------------------------------------------------------------------

def follow(scene):
    """Poll now, and keep polling while there is something to follow."""
    _state["scene"] = scene.name
    schedule.start(time.monotonic())


def _worth_following(settings):
    running = any(row.state in api.JOB_WATCHED_STATES for row in settings.jobs)
    return running or bool(_wanted_grids) or selected_job_id(settings) != (_state["loaded"] or "")


def tick():
    """Timer hook: start a poll when one is due. True while polling is scheduled."""
    if not _state["started"]:
        _state["started"] = True
        if _state["check"] == 0:  # nobody asked yet: find out whether the server is there
            check_connection(quiet=True)
    if _state["task"] is not None:
        return True
    if not schedule.due(time.monotonic()):
        return schedule.active
    scene = _scene()
    if scene is None:  # between files: try on the next tick
        return True
    _state["scene"] = scene.name
    try:
        client = bridge.make_client()
        grid_dir, temporary = storage.download_dir("samples", scene)
    except ClientError as exc:
        _failed(exc.message)
        return True
    except OSError as exc:  # no room or no permission for the sample grids: same back-off
        _failed(f"Cannot write the sample grids: {exc}.")
        return True
    s = scene.latent
    job_id = selected_job_id(s)
    grids = {jid: _grid_steps.get(jid) for jid in {job_id, *_wanted_grids} if jid}
    _state["task"] = bridge.runner.submit(
        "poll_jobs", work.poll_jobs, client, job_id, grids, grid_dir, label="Follow training",
        context={"scene": scene.name, "pack": temporary or s.storage == "PACK"},
        on_result=_polled, on_error=_poll_failed, on_cancelled=_poll_cancelled)
    return True


def _current(msg):
    """True when `msg` is from the poll in flight (not one a file load left behind); that
    poll is then over."""
    task = _state["task"]
    if task is None or task.id != msg.task_id:
        return False
    _state["task"] = None
    return True


def _polled(msg):
    if not _current(msg):
        return
    scene = _scene(msg.context["scene"])
    s = scene.latent
    p = msg.payload
    apply_jobs(scene, p["jobs"])
    if p["snapshots"] is not None and p["job_id"] == selected_job_id(s):
        apply_snapshots(scene, p["job_id"], p["snapshots"])
    for job_id, grid in p["grids"].items():
        _show_grid(scene, job_id, grid, msg.context["pack"])
    for job_id in list(_wanted_grids):  # a job without snapshots has no grid to wait for
        _wanted_grids[job_id] -= 1
        if _wanted_grids[job_id] <= 0:
            del _wanted_grids[job_id]
    recovered = schedule.succeeded(time.monotonic(), _worth_following(s))
    if p["job_id"] != selected_job_id(s):  # another job was picked while this poll ran
        follow(scene)
    bridge.set_connected(True, bridge.connection.get("text") or "Connected")
    if recovered:
        bridge.clear_message("connection")
        bridge.notify("INFO", "The server answers again: the job list is current")


def _failed(message):
    wait = schedule.failed(time.monotonic())
    bridge.set_connected(False, f"No answer from the server: trying again every {wait:.0f} s")
    if schedule.failures == 1:  # once per outage, not on every retry
        bridge.notify("WARNING", f"{message} The add-on keeps trying and resumes by itself.", key="connection")


def _poll_failed(msg):
    if _current(msg):
        _failed(msg.payload["message"])


def _poll_cancelled(msg):
    """Opening another file or disabling the add-on stopped the poll: nothing to tell."""
    _current(msg)


# -- applying what the server said -----------------------------------------------------------

def apply_jobs(scene, jobs, select_id=None):
    """Show `jobs`, keep (or move to `select_id`) the selection, announce jobs that ended."""
    s = scene.latent
    known = {row.job_id: row.state for row in s.jobs}
    warned = {row.job_id: row.warning for row in s.jobs}
    keep = select_id or selected_job_id(s)
    rows = joblist.job_rows(jobs)
    with _Syncing():
        s.jobs.clear()
        for row in rows:
            item = s.jobs.add()
            for key, value in row.items():
                setattr(item, key, value)
        ids = [r["job_id"] for r in rows]
        s.job_index = joblist.index_of(ids, keep, fallback=max(0, len(ids) - 1))  # none kept: the newest
    for job in joblist.finished_since(known, jobs):
        _announce(scene, job)
    for job in joblist.warned_since(warned, jobs):
        _warn(job)
    follow_selection(scene)


def _warn(job):
    """Once per job: its first steps say the run would take very long (a CPU run)."""
    title = job["title"] or f"job {job['id']}"
    bridge.notify("WARNING", f"Training '{title}': {estimate_warning(job['estimate'])}")


def _announce(scene, job):
    s = scene.latent
    job_id = str(job["id"])
    title = job["title"] or f"job {job_id}"
    if job["state"] == api.JOB_COMPLETED:
        text, level = f"Training '{title}' finished: step {job['step']} of {job['steps']}", "INFO"
    elif job["state"] == api.JOB_CANCELLED:
        text, level = f"Training '{title}' was cancelled at step {job['step']}; its snapshots are kept", "INFO"
    else:
        reason = joblist.job_rows([job])[0]["error"]
        text, level = f"Training '{title}' failed at step {job['step']}: {reason}", "WARNING"
    s.training_notice = text
    s.notice_job = job_id
    held = bpy.data.images.get(SAMPLE_IMAGE.format(job_id))
    s.notice_image = held.name if held is not None else ""
    _wanted_grids[job_id] = GRID_ATTEMPTS
    bridge.notify(level, f"{text}. Its samples are in the Training panel.")


def _show_grid(scene, job_id, grid, pack):
    s = scene.latent
    img = storage.keep_image(bridge.load_image(grid["path"], SAMPLE_IMAGE.format(job_id)), pack)
    _grid_steps[job_id] = grid["step"]
    _wanted_grids.pop(job_id, None)
    if job_id == selected_job_id(s):
        s.sample_image = img.name
        s.sample_step = grid["step"]
    if job_id == s.notice_job:
        s.notice_image = img.name


def apply_snapshots(scene, job_id, snapshots):
    s = scene.latent
    rows = joblist.snapshot_rows(snapshots)
    steps = [r["step"] for r in rows]
    with _Syncing():
        s.snapshots.clear()
        for row in rows:
            item = s.snapshots.add()
            item.step, item.kimg = row["step"], row["kimg"]
        s.snapshots_job = job_id
        if s.use_latest:
            s.snapshot_index = max(0, len(steps) - 1)
        else:
            # a pinned step the list lacks stays pinned (the panel says so); the row stays put
            s.snapshot_index = joblist.index_of(steps, s.pinned_step,
                                                fallback=max(0, min(s.snapshot_index, len(steps) - 1)))
    _state["loaded"] = job_id


def follow_selection(scene):
    """The snapshot list and the samples belong to the selected job: when the selection
    moved to another job, empty them, go back to "latest" and poll at once."""
    s = scene.latent
    job_id = selected_job_id(s)
    if job_id == s.snapshots_job:
        return
    with _Syncing():
        s.snapshots.clear()
        s.snapshots_job = job_id
        s.use_latest = True
        s.pinned_step = -1
        held = bpy.data.images.get(SAMPLE_IMAGE.format(job_id)) if job_id else None
        s.sample_image = held.name if held is not None else ""
        s.sample_step = _grid_steps.get(job_id, -1) if held is not None else -1
    _state["loaded"] = None
    if job_id:
        follow(scene)


def job_changed(msg):
    """A job was created, cancelled or continued: show the new list and follow that job."""
    scene = _scene(msg.context.get("scene"))
    job = msg.payload["job"]
    apply_jobs(scene, msg.payload["jobs"], select_id=str(job["id"]))
    bridge.notify("INFO", f"Training job {job['id']}: {job['state']}")
    follow(scene)


# -- update callbacks of the selections (properties.py) ------------------------------------

def on_job_selected(settings, context):
    if not _syncing and isinstance(settings.id_data, bpy.types.Scene):
        follow_selection(settings.id_data)


def on_snapshot_picked(settings, context):
    """Clicking a snapshot pins its step: Generate and Bake Walk use it from now on."""
    if _syncing or not 0 <= settings.snapshot_index < len(settings.snapshots):
        return
    with _Syncing():
        settings.pinned_step = settings.snapshots[settings.snapshot_index].step
        settings.use_latest = False


def on_use_latest_changed(settings, context):
    if _syncing or not len(settings.snapshots):
        return
    with _Syncing():
        if settings.use_latest:
            settings.snapshot_index = len(settings.snapshots) - 1
        elif settings.pinned_step not in [x.step for x in settings.snapshots]:
            settings.pinned_step = settings.snapshots[settings.snapshot_index].step


# -- after opening a file ----------------------------------------------------------------------

def _after_load():
    """A .blend was opened: the server may have moved on while it was closed."""
    if _state["task"] is not None:
        _state["task"].cancel()
        _state["task"] = None
    schedule.stop()
    _state["loaded"] = None
    _wanted_grids.clear()
    _grid_steps.clear()
    scene = bpy.context.scene
    _state["scene"] = scene.name if scene else ""
    check_connection(quiet=True)
    if scene is not None and any(row.state in api.JOB_WATCHED_STATES for row in scene.latent.jobs):
        follow(scene)


def register():
    _state.update(task=None, loaded=None, started=False)
    schedule.stop()
    bridge.tickers.append(tick)
    bridge.after_load.append(_after_load)


def unregister():
    schedule.stop()
    _state["task"] = None
