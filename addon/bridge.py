"""Main-thread side of the task runner: a bpy.app.timers callback drains the queue.

`pump()` is the one function that applies worker results to Blender data; the timer calls
it, and headless tests call it directly, so both run the same code. Each message carries
the handler its operator passed to `runner.submit`; handlers receive plain data (names,
paths, dicts) and look Blender data up by name each time.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time

import bpy

from .core.client import ClientError, LatentClient, check_url, is_local_url
from .core.tasks import TaskRunner

TIMER_INTERVAL = 0.2

runner = TaskRunner()
log = collections.deque(maxlen=200)  # (time, level, text) for the panel and for tests
progress = {}  # task id -> (fraction, status): the main thread's copy, for the panel


def notify(level, text):
    """Report something to the user from the main thread (info log, status bar, panel)."""
    log.append((time.time(), level, text))
    wm = getattr(bpy.context, "window_manager", None)
    status = getattr(wm, "latent_status", None) if wm is not None else None
    if status is not None:
        status.message = text
        status.message_level = level
    try:
        bpy.ops.latent.report_message(level=level, message=text[:1000])
    except Exception:  # no operator context (e.g. during unregister): the log keeps it
        print(f"Latent Studio {level}: {text}")
    redraw()


def redraw():
    """Tag the areas that show add-on state, so they draw the new values."""
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES", "IMAGE_EDITOR"}:
                area.tag_redraw()


def pump():
    """Apply every queued worker message. Returns how many were handled."""
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
    return len(messages)


def _timer():
    pump()
    return TIMER_INTERVAL


def pump_until_idle(timeout=30.0):
    """Run the queue until no task is left (tests and modal-free scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pump()
        if not runner.active() and runner.queue.empty():
            pump()
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


def output_dir(sub):
    """Folder for downloaded files: next to the .blend, or a temp folder when unsaved.

    Returns (path, is_temporary)."""
    if bpy.data.filepath:
        base = os.path.join(os.path.dirname(bpy.path.abspath(bpy.data.filepath)), "latent_studio")
        temporary = False
    else:
        base = os.path.join(tempfile.gettempdir(), "latent_studio")
        temporary = True
    path = os.path.join(base, sub)
    os.makedirs(path, exist_ok=True)
    return path, temporary


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


def register():
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=TIMER_INTERVAL, persistent=True)
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister():
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    runner.shutdown(wait=1.0)
    runner.drain()
    progress.clear()
