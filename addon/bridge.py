"""Main-thread side of the task runner: a bpy.app.timers callback drains the queue.

`pump()` is the one function that applies worker results to Blender data; the timer calls
it, and headless tests call it directly, so both run the same code. Each message carries
the handler its operator passed to `runner.submit`; handlers receive plain data (names,
paths, dicts) and look Blender data up by name each time. `pump()` also runs the tick
functions (following training jobs) that start work on a schedule.
"""

from __future__ import annotations

import collections
import os
import time

import bpy

from . import storage
from .core.client import ClientError, LatentClient, check_url, is_local_url
from .core.tasks import TaskRunner

TIMER_INTERVAL = 0.2

runner = TaskRunner()
log = collections.deque(maxlen=200)  # (time, level, text) for the panel and for tests
progress = {}  # task id -> (fraction, status): the main thread's copy, for the panel
# fn() -> True while it has work scheduled; run on every pump (the training watch)
tickers = []
# fn() run after a .blend is opened (resume following jobs, check the connection)
after_load = []
# Whether the last connection check or poll reached the server. Operators that need the
# server are greyed out while it is False; module state, as it must not be saved.
connection = {"ok": False}


def notify(level, text, key=""):
    """Report something to the user from the main thread (info log, status bar, panel).

    `key` names what the message is about ("connection"), so `clear_message(key)` can
    remove it from the panel once it no longer holds."""
    log.append((time.time(), level, text))
    wm = getattr(bpy.context, "window_manager", None)
    status = getattr(wm, "latent_status", None) if wm is not None else None
    if status is not None:
        status.message = text
        status.message_level = level
        status.message_key = key
    try:
        bpy.ops.latent.report_message(level=level, message=text[:1000])
    except Exception:  # no operator context (e.g. during unregister): the log keeps it
        print(f"Latent Studio {level}: {text}")
    redraw()


def clear_message(key):
    """Remove the panel's message if it was about `key` (a stale error that no longer holds)."""
    status = getattr(getattr(bpy.context, "window_manager", None), "latent_status", None)
    if status is not None and key and status.message_key == key:
        status.message = ""
        status.message_key = ""
        redraw()


def set_connected(ok, text=None):
    connection["ok"] = bool(ok)
    status = getattr(getattr(bpy.context, "window_manager", None), "latent_status", None)
    if status is not None and text is not None:
        status.connection = text


def redraw():
    """Tag the areas that show add-on state, so they draw the new values."""
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES", "IMAGE_EDITOR"}:
                area.tag_redraw()


_tick_error = [""]  # the last error a tick function raised: said once, not five times a second


def _tick():
    """Run the tick functions; True while one of them has work scheduled."""
    busy = False
    for fn in list(tickers):
        try:
            busy = bool(fn()) or busy
        except Exception as exc:  # a broken tick must not kill the timer
            if str(exc) != _tick_error[0]:
                _tick_error[0] = str(exc)
                notify("ERROR", f"Latent Studio: {exc}")
    return busy


def pump():
    """Apply every queued worker message, then run the tick functions. Returns how many
    messages were handled."""
    messages = runner.drain()
    for msg in messages:
        if msg.kind == "progress":
            progress[msg.task_id] = (msg.payload["fraction"], msg.payload["status"])
        else:
            progress.pop(msg.task_id, None)
        try:
            if msg.handler is not None:
                msg.handler(msg)
            elif msg.kind == "error":
                notify("ERROR", msg.payload["message"])
            elif msg.kind == "cancelled":
                notify("WARNING", msg.payload["message"])
        except Exception as exc:  # a broken handler must not kill the timer
            notify("ERROR", f"{msg.name}: could not apply the result: {exc}")
    if messages:
        redraw()
    _tick()
    return len(messages)


def _timer():
    pump()
    return TIMER_INTERVAL


def pump_until_idle(timeout=30.0):
    """Run the queue until no task is left and nothing is scheduled (tests and modal-free
    scripts): following a training job lasts until the job ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pump()
        if not runner.active() and runner.queue.empty() and not _tick():
            pump()
            if not runner.active() and runner.queue.empty():
                return True
        time.sleep(0.02)
    return False


# -- helpers the operators share --------------------------------------------------------

def prefs(context=None):
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences


def make_client(context=None, timeout=10.0, long_timeout=120.0):
    """A LatentClient from the preferences; ClientError when the URL is unusable or not allowed."""
    p = prefs(context)
    url = check_url(p.server_url)
    if not is_local_url(url) and not bpy.app.online_access:
        raise ClientError(
            f"Online access is disabled in Blender's preferences (System > Network): cannot reach {url}. "
            "Local servers (127.0.0.1, localhost) always work."
        )
    return LatentClient(url, p.token, timeout=timeout, long_timeout=long_timeout)


def load_image(path, name, reload=True):
    """Load (or reload) an image file into bpy.data.images under `name`.

    An existing image of that name that reads the same file is reloaded in place;
    otherwise (other file, packed data) the new image takes over all its users."""
    path = os.path.abspath(path)
    old = bpy.data.images.get(name)
    if (old is not None and old.packed_file is None
            and os.path.normpath(bpy.path.abspath(old.filepath)) == path):
        if reload:
            old.reload()
        return old
    img = bpy.data.images.load(path, check_existing=False)
    if old is not None:
        old.user_remap(img)
        bpy.data.images.remove(old)
    img.name = name
    return img


@bpy.app.handlers.persistent
def _on_load_pre(*_args):
    """Another .blend is opening: results of running tasks would land in the wrong file."""
    if runner.active():
        runner.cancel()
        log.append((time.time(), "WARNING", "Opening another file: background tasks were cancelled"))


@bpy.app.handlers.persistent
def _on_load_post(*_args):
    connection["ok"] = False  # the window manager's status starts over with the file
    for fn in list(after_load):
        fn()


@bpy.app.handlers.persistent
def _on_save_pre(filepath="", *_args):
    """First save of a file that used a temporary folder: bring its files along."""
    if bpy.data.filepath or not filepath:
        return
    copied = storage.adopt_temp_files(filepath)
    if copied:
        log.append((time.time(), "INFO", f"Copied {copied} files from the temporary folder beside the .blend"))


@bpy.app.handlers.persistent
def _on_save_post(*_args):
    storage.undo_adoption_if_still_unsaved()


_HANDLERS = ((bpy.app.handlers.load_pre, _on_load_pre), (bpy.app.handlers.load_post, _on_load_post),
             (bpy.app.handlers.save_pre, _on_save_pre), (bpy.app.handlers.save_post, _on_save_post))


def register():
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=TIMER_INTERVAL, persistent=True)
    for handlers, fn in _HANDLERS:
        if fn not in handlers:
            handlers.append(fn)


def unregister():
    for handlers, fn in _HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    runner.shutdown(wait=1.0)
    runner.drain()
    progress.clear()
    tickers.clear()
    after_load.clear()
