"""Training jobs: persistent queue, one worker process per job, restart recovery.

`init_jobs(app)` is called by `server.app.create_app` once the ServerState exists.
"""

from __future__ import annotations

import atexit
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class _SchedulerLock:
    """One scheduler per data directory: two servers on the same queue would both start
    workers for the same job. The OS drops the lock when the process dies."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "a+b")

    def try_acquire(self) -> bool:
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self.fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False


def init_jobs(app) -> None:
    from server.state import EXTENSION_KEY

    from . import scheduler as sched_mod
    from . import store
    from server.generation import walks

    state = app.extensions[EXTENSION_KEY]
    store.create_tables(state.db)
    walks.create_tables(state.db)
    jobs_dir = Path(state.config.jobs_dir)
    gpu_count = 0
    if str(state.device).startswith("cuda"):
        import torch

        gpu_count = torch.cuda.device_count()
    devices = sched_mod.slot_devices(str(state.device), state.config.device, state.config.workers, gpu_count)
    sched = sched_mod.Scheduler(state.db, jobs_dir, devices=devices)
    state.scheduler = sched
    lock = _SchedulerLock(jobs_dir / "scheduler.lock")
    if not lock.try_acquire():
        log.warning("another server runs the job queue of %s; this one will not start workers", state.config.data_dir)
        state.scheduler_lock = None
        return
    state.scheduler_lock = lock
    requeued = sched_mod.recover(state.db)
    if requeued:
        log.info("re-queued jobs interrupted by the last shutdown: %s", requeued)
    resumable_walks = walks.recover(state.db)
    if resumable_walks:
        from server.generation.routes import services

        _, renderer = services(state)
        for walk_id in resumable_walks:
            renderer.submit(walk_id)
        log.info("resuming walks interrupted by the last shutdown: %s", resumable_walks)
    sched.start()
    state.add_shutdown_hook(sched.shutdown)
    atexit.register(state.shutdown)
