"""addon/core/tasks.py: worker threads post progress/result/error/cancelled messages to a queue."""

from __future__ import annotations

import threading
import time

import pytest

from addon.core import tasks


def test_result_and_progress_in_order():
    runner = tasks.TaskRunner()

    def job(task, n):
        for i in range(n):
            task.progress((i + 1) / n, f"step {i + 1}")
        return {"sum": n * 2}

    t = runner.submit("count", job, 3, context={"scene": "S"})
    assert runner.wait_idle(5)
    msgs = runner.drain()
    assert [m.kind for m in msgs] == ["progress", "progress", "progress", "result"]
    assert [m.payload["status"] for m in msgs[:3]] == ["step 1", "step 2", "step 3"]
    assert msgs[-1].payload == {"sum": 6}
    assert all(m.task_id == t.id and m.name == "count" and m.context == {"scene": "S"} for m in msgs)
    assert runner.drain() == []
    assert runner.tasks == {}


def test_worker_runs_off_the_calling_thread():
    runner = tasks.TaskRunner()
    runner.submit("who", lambda task: threading.current_thread() is threading.main_thread())
    assert runner.wait_idle(5)
    assert runner.drain()[-1].payload is False


def test_exception_becomes_error_message_with_label():
    runner = tasks.TaskRunner()

    def boom(task):
        raise ValueError("disk full")

    runner.submit("save", boom, label="Save frames")
    assert runner.wait_idle(5)
    msg = runner.drain()[-1]
    assert msg.kind == "error"
    assert msg.payload["message"] == "Save frames: disk full"
    assert "ValueError" in msg.payload["detail"]


def test_cancel_stops_a_sleeping_task_quickly():
    runner = tasks.TaskRunner()

    def poll(task):
        while True:
            task.sleep(10)

    t = runner.submit("poll", poll)
    time.sleep(0.05)
    assert runner.running("poll")
    t0 = time.monotonic()
    runner.cancel(t.id)
    assert runner.wait_idle(2)
    assert time.monotonic() - t0 < 1.0
    assert runner.drain()[-1].kind == "cancelled"


def test_messages_carry_the_handlers_given_to_submit():
    runner = tasks.TaskRunner()

    def on_result(msg):
        pass

    def on_progress(msg):
        pass

    def on_error(msg):
        pass

    def work(task, fail):
        task.progress(0.5, "half")
        if fail:
            raise RuntimeError("no")
        return 1

    runner.submit("ok", work, False, on_result=on_result, on_progress=on_progress, on_error=on_error)
    runner.submit("bad", work, True, on_result=on_result, on_error=on_error)
    runner.submit("plain", work, False)
    assert runner.wait_idle(5)
    got = {(m.name, m.kind): m.handler for m in runner.drain()}
    assert got == {("ok", "progress"): on_progress, ("ok", "result"): on_result,
                   ("bad", "progress"): None, ("bad", "error"): on_error,
                   ("plain", "progress"): None, ("plain", "result"): None}


def test_a_misspelt_handler_kind_is_refused():
    runner = tasks.TaskRunner()
    with pytest.raises(TypeError):
        runner.submit("x", lambda task: None, on_reslut=print)
    assert runner.tasks == {}


def test_shutdown_tells_every_worker_to_stop():
    runner = tasks.TaskRunner()
    stopped = []

    def loop(task):
        while not task.should_stop():
            time.sleep(0.01)
        stopped.append(task.id)

    for _ in range(3):
        runner.submit("loop", loop)
    time.sleep(0.05)
    assert runner.shutdown(wait=2.0)
    assert len(stopped) == 3
