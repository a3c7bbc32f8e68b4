"""Generation off the HTTP threads: one render thread and a bounded number of requests.

A generate request hands its work (load the model, render, encode) to the render thread
and waits for it. At most `capacity` requests run or wait at once; one more is refused at
once with 503 + Retry-After. So generation never occupies more than `capacity` HTTP threads,
and /health and status polls always find a free one.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """No room: the caller answers 503 and the client tries again later."""


class RenderQueue:
    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("the render queue needs room for at least one request")
        self.capacity = capacity
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self._places = threading.BoundedSemaphore(capacity)

    def run(self, work: Callable[[], T]) -> T:
        """`work()` on the render thread; its result (or exception) here. QueueFull when
        `capacity` requests are already running or waiting, or the queue is closed."""
        if not self._places.acquire(blocking=False):
            raise QueueFull()
        try:
            try:
                future = self._pool.submit(work)
            except RuntimeError:  # shut down: the server is stopping
                raise QueueFull() from None
            return future.result()
        finally:
            self._places.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
