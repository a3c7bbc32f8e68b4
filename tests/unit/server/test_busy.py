"""Heavy work never starves the quick routes (issue 12): generation runs on its own thread
with a bounded queue (503 + Retry-After when full), walks have a bounded queue too, and
training workers yield the CPU to the server. (Latency figures: benchmarks/load_check.py.)"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

import pytest

from server.errors import RETRY_AFTER_S
from server.generation.render_queue import QueueFull, RenderQueue
from tests.support.http import assert_json_error
from tests.support.inprocess import add_tiny_model

MODEL = {"model_id": "tinybase"}


@pytest.fixture
def busy_api(make_api):
    api = make_api(generate_queue=1, walk_queue=1)
    return add_tiny_model(api)


class Occupied:
    """Holds the render queue's only place with work that waits until released."""

    def __init__(self, queue: RenderQueue):
        self.started, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=queue.run, args=(self._work,))
        self.thread.start()
        assert self.started.wait(10)

    def _work(self):
        self.started.set()
        self.release.wait(30)

    def done(self):
        self.release.set()
        self.thread.join(10)


def test_render_queue_refuses_beyond_its_capacity_and_gives_places_back():
    queue = RenderQueue(capacity=1)
    occupied = Occupied(queue)
    try:
        with pytest.raises(QueueFull):
            queue.run(lambda: None)
    finally:
        occupied.done()
    assert queue.run(lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):  # the work's own error reaches the caller
        queue.run(lambda: 1 / 0)
    assert queue.run(lambda: 43) == 43
    queue.close()
    with pytest.raises(QueueFull):  # closed with the server: refused, not hung
        queue.run(lambda: None)


def test_generation_runs_off_the_http_thread(busy_api, monkeypatch):
    threads = []
    real = busy_api.state.model_cache.get
    monkeypatch.setattr(busy_api.state.model_cache, "get", lambda path: threads.append(threading.current_thread().name) or real(path))
    assert busy_api.post("generate", json={"model": MODEL, "seeds": [1]}).status_code == 200
    assert len(threads) == 1 and threads[0].startswith("generate")


def test_a_full_generate_queue_answers_503_with_retry_after_and_the_rest_stays_quick(busy_api):
    occupied = Occupied(busy_api.state.renders)
    try:
        r = busy_api.post("generate", json={"model": MODEL, "seeds": [1, 2]})
        assert_json_error(r, 503, "server_busy", "try again")
        assert r.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert busy_api.app.test_client().get("/api/v1/health").status_code == 200
        assert busy_api.get("jobs").status_code == 200
    finally:
        occupied.done()
    assert busy_api.post("generate", json={"model": MODEL, "seeds": [1, 2]}).status_code == 200


def test_a_full_walk_queue_answers_503_and_creates_nothing(busy_api):
    runner = busy_api.state.walk_runner
    assert runner.reserve()  # the only place, as a walk being created would take it
    try:
        r = busy_api.post("walks", json={"model": MODEL, "waypoints": [{"frame": 0, "seed": 1}, {"frame": 2, "seed": 2}]})
        assert_json_error(r, 503, "server_busy", "walks")
        assert r.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert_json_error(busy_api.get("walks/1"), 404, "walk_not_found")
    finally:
        runner.release()
    r = busy_api.post("walks", json={"model": MODEL, "waypoints": [{"frame": 0, "seed": 1}, {"frame": 2, "seed": 2}]})
    assert r.status_code == 202


def _worker_priority_and_threads(device: str, cores: int) -> tuple[int, int]:
    import torch

    from server.jobs.worker import _leave_room_for_the_server

    torch.set_num_threads(cores)  # torch's default on an idle machine: every core
    _leave_room_for_the_server(device)
    return os.nice(0), torch.get_num_threads()


@pytest.mark.skipif(not hasattr(os, "nice"), reason="POSIX priorities")
def test_training_workers_yield_the_cpu_to_the_server():
    from server.jobs.worker import WORKER_NICENESS

    cores = len(os.sched_getaffinity(0))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        niceness, threads = pool.submit(_worker_priority_and_threads, "cpu", cores).result(timeout=120)
        _, gpu_threads = pool.submit(_worker_priority_and_threads, "cuda:0", cores).result(timeout=120)
    assert niceness == min(19, os.nice(0) + WORKER_NICENESS)
    assert threads == max(1, cores - 1)  # one core stays with the server
    assert gpu_threads == cores  # a GPU job keeps its CPU threads (it barely uses them)


def test_serve_keeps_http_threads_free_of_generation():
    from server.cli.serve import MIN_FREE_THREADS, check_threads

    check_threads(8, 4)
    with pytest.raises(ValueError, match="too few HTTP threads"):
        check_threads(4, 4 - MIN_FREE_THREADS + 1)
