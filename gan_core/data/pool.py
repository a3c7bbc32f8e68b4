"""Map a function over a stream in worker processes, results in input order, with a bounded
number of jobs in flight so memory stays flat however long the stream is."""

from __future__ import annotations

import collections
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class WorkerCrashed(RuntimeError):
    pass


def can_spawn_children() -> bool:
    """Daemonic processes (e.g. multiprocessing.Process(daemon=True)) may not have children."""
    return not multiprocessing.current_process().daemon


def ordered_map(
    fn: Callable[[T], R],
    jobs: Iterable[T],
    workers: int,
    window: int | None = None,
    initializer: Callable | None = None,
    initargs: tuple = (),
    threads: bool = False,
) -> Iterator[R]:
    """Yield fn(job) for each job, in order. workers <= 1 runs in this process; `threads`
    uses a thread pool instead of processes (no initializer: it would touch our globals).

    Closing the generator early (break, exception) cancels queued jobs and joins the pool.
    """
    job_iter = iter(jobs)
    try:
        if workers <= 1:
            for job in job_iter:
                yield fn(job)
        else:
            if threads:
                pool = ThreadPoolExecutor(max_workers=workers)
            else:
                # spawn, not fork: the caller may be a threaded server or have torch loaded, and
                # forking a threaded process can deadlock; spawn also behaves the same everywhere.
                ctx = multiprocessing.get_context("spawn")
                pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs)
            yield from _pooled(pool, fn, job_iter, window or workers * 2 + 1)
    finally:
        close = getattr(job_iter, "close", None)
        if close is not None:  # e.g. stops an ffmpeg process feeding video frames
            close()


def _pooled(pool, fn, job_iter, window):
    pending: collections.deque = collections.deque()
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    job = next(job_iter)
                except StopIteration:
                    exhausted = True
                    break
                pending.append(pool.submit(fn, job))
            if not pending:
                return
            try:
                result = pending.popleft().result()
            except BrokenProcessPool:
                raise WorkerCrashed("a worker process died (out of memory?)") from None
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
