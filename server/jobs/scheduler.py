"""The training queue: FIFO, at most `workers` jobs at once, each in its own process.

A background thread ticks twice a second: it reaps finished worker processes (their exit
code decides the final state) and starts the oldest queued jobs while slots are free.
The queue itself lives in SQLite, so it survives restarts; this class only holds the
handles of the processes it started.

A job's `gpus` option (default 1) is how many training processes it runs. One: a spawned
worker on its slot's device, as always. More: torchrun runs the worker once per process
(server.jobs.launch). On a CUDA server each of those processes takes a GPU of its own: the
job waits, first in the queue, until that many GPUs are free (used neither by another
multi-GPU job nor by a one-GPU job's slot), and no job starts on a GPU a multi-GPU job
holds. On a CPU server `gpus: N` means N gloo processes sharing the cores. "all" is every
GPU the server was given (one process on a CPU server). A job still counts as one worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path

from gan_core import rules
from server.jobs import launch, states, store, worker

log = logging.getLogger(__name__)
TICK_S = 0.5

# The training library's config fields we fill from a job row (see INTERFACES.md).
_PARAM_TO_CONFIG = {
    "data": "data", "base": "base", "snapshot_every": "snapshot_every", "batch": "batch",
    "resolution": "resolution", "preset": "preset", "augmentation": "aug", "mirror": "mirror",
    "seed": "seed", "precision": "precision", "keep_snapshots": "keep_snapshots", "tileable": "tileable",
}


def training_config(job: dict, device: str) -> dict:
    """TrainingConfig kwargs for a job row (plain data: it crosses a process boundary)."""
    params = job["params"]
    cfg = {dst: params[src] for src, dst in _PARAM_TO_CONFIG.items() if params.get(src) is not None}
    cfg.update(run_dir=job["run_dir"], steps=int(job["steps"]), device=device)
    return cfg


def exit_outcome(code: int | None) -> tuple[str, str]:
    """(target state, reason) for a worker's exit code."""
    if code == worker.EXIT_COMPLETED:
        return states.COMPLETED, "training finished"
    if code == worker.EXIT_CANCELLED:
        return states.CANCELLED, "cancelled; final snapshot kept"
    if code == worker.EXIT_ORPHANED:
        return states.INTERRUPTED, "worker stopped with the server"
    if code is not None and code < 0:
        return states.FAILED, f"worker process killed by signal {-code}"
    return states.FAILED, f"worker process exited with code {code}"


def slot_devices(resolved: str, requested: str, workers: int, gpu_count: int) -> list[str]:
    """The device of each worker slot.

    With `--device auto|cuda` and several GPUs, slot i trains on GPU i (one job per GPU);
    more slots than GPUs share them round-robin. An explicit device (cuda:1, cpu) is used
    by every slot, as asked.
    """
    if resolved.startswith("cuda") and requested in ("auto", "cuda") and gpu_count > 1:
        return [f"cuda:{i % gpu_count}" for i in range(workers)]
    return [resolved] * workers


def gpu_pool(resolved: str, requested: str, gpu_count: int) -> list[str]:
    """The GPUs a multi-GPU job may take: every GPU with --device auto|cuda, the one named by
    an explicit --device cuda:N, none on a CPU server (where `gpus` counts processes)."""
    if not resolved.startswith("cuda"):
        return []
    if requested in ("auto", "cuda"):
        return [f"cuda:{i}" for i in range(max(1, gpu_count))]
    return [resolved]


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def job_processes(gpus, pool: list[str]) -> int:
    """How many training processes a job's `gpus` option means on this server."""
    if gpus == rules.ALL_GPUS:
        return max(1, len(pool))
    return int(gpus or 1)


def check_job_processes(gpus, batch: int, pool: list[str], cores: int | None = None) -> int:
    """A job's `gpus` against this server (ValueError naming the field): no more processes
    than it has GPUs (on a CPU server: cores), and a batch that splits evenly over them."""
    rules.check_gpus(gpus)
    n = job_processes(gpus, pool)
    if pool and n > len(pool):
        raise rules.RuleError(f"gpus {n}: this server was given {len(pool)} GPU{'s' if len(pool) > 1 else ''} "
                              f"({', '.join(pool)}); ask for at most {len(pool)}, or 'all'")
    cores = cpu_cores() if cores is None else cores
    if not pool and n > cores:
        raise rules.RuleError(f"gpus {n}: this server trains on the CPU, where gpus is the number of training "
                              f"processes; it has {cores} cores, so ask for at most {cores}")
    rules.check_batch_split(batch, n)
    return n


class Scheduler:
    def __init__(self, db, jobs_dir: Path, workers: int = 1, device: str = "auto", devices: list[str] | None = None,
                 gpus: list[str] | None = None):
        self.db = db
        self.jobs_dir = Path(jobs_dir)
        self.devices = list(devices) if devices else [device] * int(workers)
        self.workers = len(self.devices)
        # GPUs for multi-GPU jobs (gpu_pool); empty on a CPU server
        self.gpus = list(gpus) if gpus is not None else sorted({d for d in self.devices if d.startswith("cuda")})
        self._procs: dict[int, tuple[multiprocessing.process.BaseProcess, int]] = {}
        self._slot_of: dict[int, int] = {}  # job id -> index into self.devices
        self._held: dict[int, tuple[str, ...]] = {}  # multi-GPU job id -> the GPUs it holds alone
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx = multiprocessing.get_context("spawn")  # no forked torch/Flask state in workers

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="job-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Called after a job is queued so it starts without waiting for the next tick."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep scheduling even if one tick hits a transient DB error
                log.exception("scheduler tick failed")
            self._wake.wait(TICK_S)
            self._wake.clear()

    def running_job_ids(self) -> list[int]:
        with self._lock:
            return list(self._procs)

    # -- one round ---------------------------------------------------------------------
    def tick(self) -> None:
        with self._lock:
            self._reap()
            while len(self._procs) < self.workers and not self._stop.is_set():
                job = store.next_queued(self.db)
                if job is None:
                    break
                placement = self._place(job)
                if placement is None:  # strict FIFO: the oldest job waits for its GPUs, nobody overtakes it
                    break
                self._launch(job, *placement)

    # -- devices -----------------------------------------------------------------------
    def processes_for(self, gpus) -> int:
        return job_processes(gpus, self.gpus)

    def _place(self, job: dict) -> tuple[int, list[str]] | None:
        """(slot, devices) for the job now, or None while what it needs is busy. A job that can
        never fit (the server was restarted with fewer GPUs) is placed anyway and fails at launch."""
        free_slots = sorted(set(range(self.workers)) - set(self._slot_of.values()))
        held = {d for devices in self._held.values() for d in devices}
        n = self.processes_for(job["params"].get("gpus"))
        if n == 1:
            slot = next((i for i in free_slots if self.devices[i] not in held), None)
            return None if slot is None else (slot, [self.devices[slot]])
        if not self.gpus:  # CPU processes: no devices to count
            return free_slots[0], ["cpu"] * n
        if n > len(self.gpus):
            return free_slots[0], []
        in_use = held | {self.devices[slot] for job_id, slot in self._slot_of.items() if job_id not in self._held}
        free = [d for d in self.gpus if d not in in_use]
        return (free_slots[0], free[:n]) if len(free) >= n else None

    def _reap(self) -> None:
        for job_id, (proc, attempt) in list(self._procs.items()):
            if proc.is_alive():
                continue
            proc.join()
            del self._procs[job_id]
            self._slot_of.pop(job_id, None)
            self._held.pop(job_id, None)
            self._finish(job_id, attempt, proc.exitcode)

    def _finish(self, job_id: int, attempt: int, code: int | None) -> None:
        target, reason = exit_outcome(code)
        row = store.get_job(self.db, job_id)
        if target == states.INTERRUPTED and row and row["state"] == states.CANCELLING:
            # Stopped with the server while a cancel was pending: the user's cancel wins.
            target, reason = states.CANCELLED, "cancelled; worker stopped with the server"
        fields = {"pid": None}
        if target == states.FAILED and not (row and row.get("error")):
            fields["error"] = reason
        if target != states.FAILED:
            fields["error"] = None
        try:
            store.transition(self.db, job_id, target, reason, for_attempt=attempt, **fields)
        except states.IllegalTransition as exc:  # the row moved on (e.g. superseded attempt)
            log.warning("job %s: not recording %s after exit %s: %s", job_id, target, code, exc)

    def _launch(self, job: dict, slot: int, devices: list[str]) -> None:
        attempt = int(job["attempt"]) + 1
        try:
            job = store.claim_queued(self.db, job["id"], attempt)
        except states.IllegalTransition:
            return  # cancelled between the query and the claim
        job_dir = Path(job["run_dir"]).parent
        job_dir.mkdir(parents=True, exist_ok=True)
        for flag in ("cancel.flag", "stop.flag"):  # left over from an earlier attempt
            (job_dir / flag).unlink(missing_ok=True)
        n = self.processes_for(job["params"].get("gpus"))
        if n > 1 and len(devices) < n:
            store.transition(self.db, job["id"], states.FAILED, "not enough GPUs", for_attempt=attempt,
                             error=f"this job trains on {n} GPUs but the server now has {len(self.gpus)}; "
                                   "restart the server with more GPUs, or start a new job with fewer")
            return
        device = self.devices[slot] if n == 1 else ("cuda" if self.gpus else "cpu")
        payload = {
            "job_id": job["id"], "attempt": attempt, "db_file": store.db_path(self.db),
            "parent_pid": os.getpid(), "job_dir": str(job_dir),
            "config": training_config(job, device),
        }
        if n == 1:
            proc = self._ctx.Process(target=worker.run_worker, args=(payload,), name=f"latent-job-{job['id']}")
        else:
            proc = launch.TorchrunJob(payload, n, devices)
        try:
            proc.start()
        except Exception as exc:  # e.g. out of memory / process limit: say so on the job
            log.exception("job %s: could not start a worker", job["id"])
            store.transition(self.db, job["id"], states.FAILED, "worker could not start", for_attempt=attempt,
                             error=f"could not start a worker process: {exc}")
            return
        store.set_pid(self.db, job["id"], attempt, proc.pid)
        self._procs[job["id"]] = (proc, attempt)
        self._slot_of[job["id"]] = slot
        if n > 1 and self.gpus:
            self._held[job["id"]] = tuple(devices)
        log.info("job %s: started worker pid %s on %s (attempt %s)", job["id"], proc.pid,
                 ", ".join(devices) if n > 1 else self.devices[slot], attempt)

    # -- shutdown ----------------------------------------------------------------------
    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop scheduling; ask workers to snapshot and stop; record them as interrupted.

        Interrupted jobs are queued again on the next start, so a clean stop loses only
        the steps since the final snapshot the worker takes here.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for job_id, (proc, attempt) in self._procs.items():
                job = store.get_job(self.db, job_id)
                if job:
                    Path(job["run_dir"]).parent.joinpath("stop.flag").touch()
            deadline = time.monotonic() + timeout
            for job_id, (proc, attempt) in list(self._procs.items()):
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)
                    row = store.get_job(self.db, job_id)
                    target = states.CANCELLED if row and row["state"] == states.CANCELLING else states.INTERRUPTED
                    try:
                        store.transition(self.db, job_id, target, "server stopped; worker terminated",
                                         for_attempt=attempt, pid=None)
                    except states.IllegalTransition:
                        pass
                    del self._procs[job_id]
                    self._slot_of.pop(job_id, None)
                    self._held.pop(job_id, None)
            self._reap()


def recover(db) -> list[int]:
    """At server start: jobs a dead server left running become interrupted, then queued.

    Their worker died with the server (or stops itself on noticing that); the next
    attempt resumes from the newest snapshot in the same run directory, and the worker's
    directory lock keeps it from starting while a straggler still writes. A job that was
    being cancelled is not restarted against the user's wish: it becomes cancelled (its
    snapshots stay, and it can be resumed by hand).
    """
    requeued = []
    now = time.time()
    for job in store.list_jobs(db, states.LIVE_STATES | {states.INTERRUPTED}):
        try:
            if job["state"] == states.CANCELLING:
                store.transition(db, job["id"], states.CANCELLED,
                                 "server restarted during cancel; the last snapshot is kept", pid=None)
                continue
            if job["state"] == states.RUNNING:
                age = f"{now - job['heartbeat']:.0f}s ago" if job.get("heartbeat") else "never"
                store.transition(db, job["id"], states.INTERRUPTED,
                                 f"server restarted; worker pid {job.get('pid')} lost (last heartbeat {age})", pid=None)
            store.transition(db, job["id"], states.QUEUED, "re-queued after restart; resumes from the last snapshot")
            requeued.append(job["id"])
        except states.IllegalTransition as exc:
            log.warning("job %s: could not recover: %s", job["id"], exc)
    return requeued
