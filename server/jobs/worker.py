"""Entry point of a training worker process (one per job, started with 'spawn').

The worker knows the job id, its attempt number and the SQLite file; it calls
`gan_core.train.loop.train` with two callbacks: `on_progress` persists progress (throttled)
and `should_stop` answers from a flag that a watcher thread sets when the job is being
cancelled, when the server process has died, or when this attempt was superseded.
The exit code tells the scheduler how it ended; a message for the user goes to the row.

A job with several processes runs this module under torchrun (`python -m server.jobs.worker
<payload file>`, see server.jobs.launch): every rank trains; rank 0 alone holds the run
folder's lock, watches for cancel and the server's death, writes progress and records the
outcome in a file for the scheduler (torchrun reports only failed or not).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import traceback
from pathlib import Path

from gan_core.fileio import is_disk_full
from server.filelock import FileLock
from server.jobs import states, store

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 3
EXIT_ORPHANED = 4  # the server died; a restarted server resumes the job

# What the job's JSON shows of gan_core.train.estimate's event.
ESTIMATE_FIELDS = ("step", "sec_per_step", "eta_s", "snapshot_bytes", "snapshots_kept", "timelapse_bytes", "disk_bytes",
                   "warning")
WATCH_INTERVAL_S = 0.5
PROGRESS_MIN_INTERVAL_S = 1.0
LOCK_WAIT_S = 300.0
# When the CPU is contended the server's HTTP threads come first: status polls stay quick and
# cost training little. On a CPU device training also leaves one core to the server.
WORKER_NICENESS = 10
_SNAPSHOT_FILE = re.compile(r"^(?:network|state|grid)-(\d{6,})\.")


def _leave_room_for_the_server(device: str) -> None:
    if hasattr(os, "nice"):
        try:
            os.nice(WORKER_NICENESS)
        except OSError:  # not allowed here: run at normal priority
            pass
    if str(device).startswith("cpu"):
        import torch

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(max(1, min(torch.get_num_threads(), cores - 1)))


def _drop_unrecorded_snapshot_files(run_dir: Path) -> None:
    """After a snapshot failed part-way (a full disk): remove the files of steps newer than
    the last one index.json records, so the run folder holds exactly the complete snapshots.
    Without an index nothing is known to be complete, and nothing is removed."""
    from gan_core.train.snapshots import INDEX_NAME, list_snapshots, snapshot_dir

    folder = snapshot_dir(run_dir)
    if not (folder / INDEX_NAME).is_file():
        return
    recorded = [entry["step"] for entry in list_snapshots(run_dir)]
    newest = max(recorded, default=-1)
    for path in folder.iterdir():
        match = _SNAPSHOT_FILE.match(path.name)
        if (match and int(match.group(1)) > newest) or (path.name.startswith(".") and path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)


def _stopped_by_full_disk(db_file: str, job_id: int, attempt: int, run_dir: Path, exc: OSError) -> int:
    """A write found the disk full: keep the last complete snapshot, say how to go on."""
    _drop_unrecorded_snapshot_files(run_dir)
    from gan_core.train.snapshots import list_snapshots

    kept = list_snapshots(run_dir)
    last = f"the last complete snapshot (step {kept[-1]['step']}) is intact" if kept else "no snapshot was complete yet"
    _record_error(db_file, job_id, attempt,
                  f"the server's disk is full: training stopped ({exc.strerror or exc}); {last}. "
                  "Free space on the server's disk, then resume the job.")
    return EXIT_FAILED


def _start_time(pid: int) -> str | None:
    """A process's start time (/proc, Linux), so a recycled pid is not mistaken for it; None
    when it is gone or a zombie (dead, not yet reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _server_alive(pid: int, started: str | None) -> bool:
    if Path("/proc/self/stat").exists():
        return started is not None and _start_time(pid) == started
    try:  # no /proc (macOS): the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Watcher(threading.Thread):
    """Heartbeat + stop conditions, checked off the training thread so a slow step
    never delays the heartbeat and the training loop only reads a flag."""

    def __init__(self, db_file: str, job_id: int, attempt: int, parent_pid: int, flag_file: Path,
                 via_launcher: bool = False):
        super().__init__(daemon=True, name=f"job-{job_id}-watcher")
        self.db_file, self.job_id, self.attempt = db_file, job_id, attempt
        self.parent_pid, self.flag_file = parent_pid, flag_file
        # Under torchrun our parent is the launcher, whose parent is the server: both must live.
        self.via_launcher = via_launcher
        self.launcher_pid = os.getppid()
        self.server_started = _start_time(parent_pid) if via_launcher else None
        self.stop = threading.Event()
        self.reason: str | None = None  # cancel | orphaned | superseded | server_stopping
        self.done = threading.Event()

    def _set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.stop.set()

    def _orphaned(self) -> bool:
        if not self.via_launcher:
            return os.getppid() != self.parent_pid
        return os.getppid() != self.launcher_pid or not _server_alive(self.parent_pid, self.server_started)

    def check_once(self) -> None:
        if self._orphaned():
            self._set("orphaned")
            return
        if self.flag_file.exists():
            self._set("cancel")
        if self.flag_file.with_name("stop.flag").exists():  # the server is shutting down cleanly
            self._set("server_stopping")
        try:
            state = store.beat(self.db_file, self.job_id, self.attempt)
        except Exception:  # a locked/busy DB must not kill training; try again next tick
            return
        if state is None:
            self._set("superseded")
        elif state == states.CANCELLING:
            self._set("cancel")

    def run(self) -> None:
        while not self.done.is_set():
            self.check_once()
            self.done.wait(WATCH_INTERVAL_S)


class _Progress:
    """Turns training events into throttled row updates."""

    def __init__(self, db_file: str, job_id: int, attempt: int):
        self.db_file, self.job_id, self.attempt = db_file, job_id, attempt
        self.last_write = 0.0
        self.step = 0
        self.pending: dict = {}

    def __call__(self, event: dict) -> None:
        kind = event.get("event", "progress")
        fields: dict = {}
        if "step" in event:
            self.step = max(self.step, int(event["step"]))
            fields["step"] = int(event["step"])
        for key in ("kimg", "ada_p", "sec_per_kimg", "eta_s"):
            if event.get(key) is not None:
                fields[key] = float(event[key])
        losses = event.get("losses")
        if isinstance(losses, dict):
            losses = dict(losses)
            if event.get("r1") is not None:
                losses.setdefault("r1", event["r1"])
            fields["losses"] = losses
        if kind == "snapshot" and event.get("grid"):
            fields["latest_grid"] = str(event["grid"])
        if kind == "estimate":  # the run's projected time and disk, measured on its first steps
            fields["estimate"] = {k: event[k] for k in ESTIMATE_FIELDS}
        now = time.monotonic()
        # Plain progress is written at most once a second; a throttled report is kept
        # and goes out with the next write, so the last losses/ETA are never dropped.
        self.pending.update(fields)
        if kind == "progress" and now - self.last_write < PROGRESS_MIN_INTERVAL_S:
            return
        if self.pending:
            try:
                store.update_progress(self.db_file, self.job_id, self.attempt, self.pending)
                self.pending = {}
            except Exception as exc:  # progress is best effort; training goes on
                print(f"[job {self.job_id}] could not record progress: {exc}", file=sys.stderr)
            self.last_write = now


def _record_error(db_file: str, job_id: int, attempt: int, message: str) -> None:
    try:
        store.update_progress(db_file, job_id, attempt, {"error": message[:4000]})
    except Exception:
        pass


def run_worker(payload: dict) -> None:
    """Process target. `payload`: job_id, attempt, db_file, parent_pid, job_dir, config."""
    code = _run(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: nothing left to flush, and it is faster


def main(argv: list[str] | None = None) -> None:
    """One rank of a multi-process job, as torchrun starts it: `python -m server.jobs.worker PAYLOAD_FILE`."""
    from gan_core.train.distributed import env_dist_info
    from server.jobs.launch import write_outcome

    argv = sys.argv[1:] if argv is None else argv
    payload = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    rank = env_dist_info().rank
    code = _run(payload, rank=rank)
    if rank == 0:
        try:
            write_outcome(Path(payload["job_dir"]), payload["attempt"], code)
        except OSError:  # e.g. a full disk: the launcher's exit status still says failed or not
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    # A clean end is 0 for torchrun (the outcome file says which); a failure stays non-zero so
    # torchrun stops the other ranks instead of leaving them waiting in a collective.
    os._exit(EXIT_COMPLETED if code in (EXIT_COMPLETED, EXIT_CANCELLED, EXIT_ORPHANED) else code)


def _run(payload: dict, rank: int | None = None) -> int:
    """Train the job; `rank` is set under torchrun (None: the only process of a one-process job)."""
    job_id, attempt, db_file = payload["job_id"], payload["attempt"], payload["db_file"]
    job_dir = Path(payload["job_dir"])
    if rank:  # ranks > 0 only train: rank 0 holds the lock, watches, reports and decides the outcome
        return _run_other_rank(payload)
    # A worker orphaned by a crashed server may still be writing its final snapshot when the
    # restarted server starts the next attempt: this lock on the job directory makes us wait.
    lock = FileLock(job_dir / "worker.lock")
    if not lock.acquire(LOCK_WAIT_S):
        _record_error(db_file, job_id, attempt, "another worker still holds this job's run directory")
        return EXIT_FAILED
    watcher = _Watcher(db_file, job_id, attempt, payload["parent_pid"], job_dir / "cancel.flag",
                       via_launcher=rank is not None)
    watcher.check_once()
    watcher.start()
    progress = _Progress(db_file, job_id, attempt)
    try:
        _leave_room_for_the_server(payload["config"].get("device", "cpu"))
        from gan_core.train.loop import TrainingConfig, train

        config = TrainingConfig(**payload["config"])
        summary = train(config, on_progress=progress, should_stop=watcher.stop.is_set) or {}
    except ValueError as exc:  # user-facing errors (TrainingConfigError, DatasetError, ...)
        _record_error(db_file, job_id, attempt, f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
    except Exception as exc:
        if is_disk_full(exc):
            return _stopped_by_full_disk(db_file, job_id, attempt, Path(payload["config"]["run_dir"]), exc)
        traceback.print_exc()
        _record_error(db_file, job_id, attempt, f"training crashed: {type(exc).__name__}: {exc}")
        return EXIT_FAILED
    finally:
        watcher.done.set()
    final_step = max(progress.step, int(summary.get("step", 0) or 0))
    if final_step >= int(payload["config"]["steps"]):
        return EXIT_COMPLETED
    if watcher.reason == "cancel":
        return EXIT_CANCELLED
    if watcher.reason in ("orphaned", "superseded", "server_stopping"):
        return EXIT_ORPHANED
    _record_error(db_file, job_id, attempt, f"training stopped at step {final_step} of {payload['config']['steps']} without a reason")
    return EXIT_FAILED


def _run_other_rank(payload: dict) -> int:
    """A rank > 0: train until rank 0 stops (every rank agrees on stopping in the loop);
    a crash here is recorded on the job, which rank 0 then also fails on."""
    job_id, attempt, db_file = payload["job_id"], payload["attempt"], payload["db_file"]
    try:
        _leave_room_for_the_server(payload["config"].get("device", "cpu"))
        from gan_core.train.loop import TrainingConfig, train

        train(TrainingConfig(**payload["config"]))
    except Exception as exc:
        traceback.print_exc()
        # User errors are the same on every rank, and a rank that lost rank 0 only sees a closed
        # connection: rank 0's message, when it has one, is the one to keep.
        try:
            row = store.get_job(db_file, job_id)
        except Exception:
            row = None
        if not isinstance(exc, ValueError) and row and row["attempt"] == attempt and not row.get("error"):
            _record_error(db_file, job_id, attempt, f"a training process crashed: {type(exc).__name__}: {exc}")
        return EXIT_FAILED
    return EXIT_COMPLETED


if __name__ == "__main__":
    main()
