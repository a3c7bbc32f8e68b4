"""Background task runner (no bpy).

Work functions run on worker threads and talk to the main thread only through a
thread-safe queue of messages. The Blender side drains the queue from a timer.

A work function has the signature ``fn(task, *args)``; it calls ``task.progress(...)``
while it works, checks ``task.should_stop()``, and returns its result. The runner posts
``Message(kind="result"|"error"|"cancelled"|"progress", ...)``; each message carries the
handler function given to ``submit`` for its kind (by reference, so a misspelt handler is
a NameError where it is named, not a result that silently goes nowhere).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import traceback


class TaskCancelled(Exception):
    """Raised by work functions (or `task.check()`) when the user cancelled."""


class Message:
    __slots__ = ("task_id", "name", "kind", "payload", "context", "handler")

    def __init__(self, task_id, name, kind, payload, context, handler=None):
        self.task_id = task_id
        self.name = name  # what the task does, e.g. "generate" (for messages and thread names)
        self.kind = kind  # "progress" | "result" | "error" | "cancelled"
        self.payload = payload
        self.context = context  # plain data the main thread gave when starting the task
        self.handler = handler  # fn(message) for the main thread, or None for the default

    def __repr__(self):
        return f"Message({self.task_id}, {self.name!r}, {self.kind!r}, {self.payload!r})"


class Task:
    def __init__(self, runner, task_id, name, label, context, handlers):
        self.id = task_id
        self.name = name
        self.label = label
        self.context = context
        self.handlers = handlers  # kind -> fn(message) or None
        self.fraction = 0.0
        self.status = "starting"
        self.finished = False
        self._cancel = threading.Event()
        self._runner = runner
        self.thread = None

    def should_stop(self):
        return self._cancel.is_set() or self._runner.stopping

    def check(self):
        if self.should_stop():
            raise TaskCancelled()

    def cancel(self):
        self._cancel.set()

    def progress(self, fraction=None, status=None, **extra):
        if fraction is not None:
            self.fraction = max(0.0, min(1.0, float(fraction)))
        if status is not None:
            self.status = status
        payload = {"fraction": self.fraction, "status": self.status, **extra}
        self._runner._post(self, "progress", payload)

    def sleep(self, seconds):
        """Wait up to `seconds`, returning early (and raising) when cancelled."""
        if self._cancel.wait(seconds) or self._runner.stopping:
            raise TaskCancelled()


class TaskRunner:
    def __init__(self):
        self.queue = queue.Queue()
        self.tasks = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.stopping = False

    def submit(self, name, fn, *args, label=None, context=None, on_result=None, on_progress=None, on_error=None,
               on_cancelled=None):
        """Start `fn(task, *args)` on a daemon thread; returns the Task.

        The `on_*` functions run on the main thread (bridge.pump) with each Message of that
        kind; without one, errors and cancellations are just reported to the user."""
        handlers = {"result": on_result, "progress": on_progress, "error": on_error, "cancelled": on_cancelled}
        with self._lock:
            self.stopping = False
            task = Task(self, next(self._ids), name, label or name, context or {}, handlers)
            self.tasks[task.id] = task
        thread = threading.Thread(target=self._run, args=(task, fn, args), name=f"latent-{name}-{task.id}",
                                  daemon=True)
        task.thread = thread
        thread.start()
        return task

    def _run(self, task, fn, args):
        try:
            result = fn(task, *args)
        except TaskCancelled:
            self._finish(task, "cancelled", {"message": f"{task.label}: cancelled"})
        except Exception as exc:  # every failure reaches the user as a message
            message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
            if task.should_stop() and "cancel" in message.lower():
                self._finish(task, "cancelled", {"message": f"{task.label}: cancelled"})
            else:
                detail = "" if hasattr(exc, "message") else traceback.format_exc()
                self._finish(task, "error", {"message": f"{task.label}: {message}", "detail": detail})
        else:
            self._finish(task, "result", result)

    def _finish(self, task, kind, payload):
        task.finished = True
        task.fraction = 1.0 if kind == "result" else task.fraction
        self._post(task, kind, payload)

    def _post(self, task, kind, payload):
        self.queue.put(Message(task.id, task.name, kind, payload, task.context, task.handlers.get(kind)))

    def drain(self, limit=1000):
        """Messages posted since the last call (main thread)."""
        out = []
        for _ in range(limit):
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        for msg in out:
            if msg.kind != "progress":
                with self._lock:
                    self.tasks.pop(msg.task_id, None)
        return out

    def active(self):
        with self._lock:
            return [t for t in self.tasks.values() if not t.finished]

    def running(self, name):
        return any(t.name == name for t in self.active())

    def cancel(self, task_id=None):
        with self._lock:
            targets = list(self.tasks.values()) if task_id is None else [self.tasks.get(task_id)]
        for t in targets:
            if t is not None:
                t.cancel()

    def shutdown(self, wait=2.0):
        """Tell every worker to stop and wait a little for them (add-on unregister)."""
        self.stopping = True
        self.cancel()
        deadline = time.monotonic() + wait
        for t in list(self.tasks.values()):
            if t.thread is not None:
                t.thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in self.tasks.values() if t.thread is not None and t.thread.is_alive()]
        return not alive

    def wait_idle(self, timeout):
        deadline = time.monotonic() + timeout
        while self.active() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.active()
