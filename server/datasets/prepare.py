"""Background dataset preparation: gan_core.data.build_dataset in its own (spawned) process.

A separate process keeps a slow or crashing build away from the API; the child writes its
progress and outcome straight into SQLite. Preparations are queued like jobs: the queue is
the 'preparing' rows in phase 'queued' (so it survives a restart), and one dispatcher thread
in the server that owns the data directory starts at most `max_preparations` of them at
once (each build runs its own pool of processes), reaps them and records a crash the child
could not record itself.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from gan_core.fileio import atomic_write_text, is_disk_full
from server.datasets import store
from server.datasets.safe_zip import UnsafeZipError, ZipLimits, extract_zip
from server.db import Database
from server.errors import DISK_FULL_MESSAGE
from server.redact import redact_all, redact_paths
from server.state import ServerState

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5  # at most two progress writes a second
EXTRACT_SHARE = 0.05  # share of the progress bar given to unpacking the upload
TICK_S = 1.0  # the dispatcher also looks for queued rows this often (another server may queue them)
UPLOAD_NAME = "upload"  # what the report calls the extracted upload instead of its server path


class _ProgressWriter:
    """Turns build_dataset progress events into throttled progress writes."""

    def __init__(self, db: Database, dataset_id: str):
        self.db, self.dataset_id, self.last = db, dataset_id, 0.0

    def __call__(self, event: dict) -> None:
        fraction = _fraction(event)
        now = time.monotonic()
        if fraction is None or now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        phase = str(event.get("phase") or event.get("stage") or event.get("event") or "building")
        store.set_progress(self.db, self.dataset_id, EXTRACT_SHARE + (1 - EXTRACT_SHARE) * fraction, phase)


def _fraction(event: dict) -> float | None:
    if isinstance(event.get("progress"), (int, float)):
        return max(0.0, min(1.0, float(event["progress"])))
    done, total = event.get("done"), event.get("total")
    if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
        return max(0.0, min(1.0, done / total))
    return None


def summary_of(report) -> dict:
    """The few numbers the API shows; the full report (every rejected file) stays in report.json."""
    report = report if isinstance(report, dict) else {}
    counts = report.get("counts") or {}
    class_names = report.get("class_names") or None
    return {
        "resolution": report.get("resolution"),
        "count": counts.get("images"),
        "accepted": counts.get("accepted"),
        "rejected": counts.get("rejected"),
        "inflated": counts.get("inflated"),
        "class_names": class_names,
    }


def _public_report(report_path: Path, roots: tuple[Path, ...]) -> None:
    """Rewrite the builder's report.json (it names files by their paths on this machine) so
    the served copy names them relative to the upload."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report["output"] = store.DATASET_ZIP
    if isinstance(report.get("source"), dict):
        report["source"]["path"] = UPLOAD_NAME
    atomic_write_text(report_path, json.dumps(redact_all(report, roots), indent=1))


def run_preparation(db_path: str, dataset_id: str, folder: str, params: dict, limits: dict) -> None:
    """Child-process entry point: extract the upload, build the dataset, record the outcome."""
    from gan_core.data import DatasetError, build_dataset  # imported here: only the child needs it

    db = Database(db_path)
    folder_path = Path(folder)
    work = folder_path / store.WORK_DIR
    # Messages and the report name files relative to the upload, never by server paths.
    roots = (work / "source", folder_path, folder_path.parent.parent)
    shutil.rmtree(work, ignore_errors=True)
    try:
        store.set_progress(db, dataset_id, 0.0, "extracting")
        zip_limits = ZipLimits(**limits)
        extract_zip(folder_path / store.SOURCE_ZIP, work / "source", zip_limits)
        store.set_progress(db, dataset_id, EXTRACT_SHARE, "building")
        summary = build_dataset(
            work / "source",
            folder_path / store.DATASET_ZIP,
            resolution=params["resolution"],
            crop=params["crop"],
            background=params["background"],
            allow_upscale=params["allow_upscale"],
            inflate=tuple(params["inflate"]),
            labels_from_folders=params["labels_from_folders"],
            max_images=zip_limits.max_images,
            max_source_bytes=zip_limits.max_total_bytes,  # the zip check already bounded what was extracted
            report_path=folder_path / store.REPORT_JSON,
            preview_path=folder_path / store.PREVIEW_PNG,
            on_progress=_ProgressWriter(db, dataset_id),
        )
        _public_report(folder_path / store.REPORT_JSON, roots)
        store.mark_ready(db, dataset_id, summary_of(summary))
    except (DatasetError, UnsafeZipError) as exc:
        store.mark_failed(db, dataset_id, redact_paths(str(exc), roots))
    except Exception as exc:
        if is_disk_full(exc):  # nothing half-written stays: the builder writes atomically, work/ goes
            store.mark_failed(db, dataset_id, f"{DISK_FULL_MESSAGE} (prepare the dataset again)")
            return
        # A bug, not bad input: keep the server's view consistent, log the trace.
        traceback.print_exc()
        store.mark_failed(db, dataset_id, redact_paths(f"internal error while preparing: {exc.__class__.__name__}: {exc}", roots))
    finally:
        shutil.rmtree(work, ignore_errors=True)


STALE_UPLOAD_S = 24 * 3600


def recover_after_restart(state: ServerState) -> int:
    """At start-up: fail preparations the last stop cut short (queued ones simply run now),
    remove their half-extracted sources, and drop upload temp files a crash left behind.
    Returns how many were failed."""
    interrupted = [d["id"] for d in store.list_datasets(state.db)
                   if d["state"] == "preparing" and d["phase"] != store.QUEUED_PHASE]
    store.fail_interrupted_preparations(state.db)
    for dataset_id in interrupted:
        shutil.rmtree(store.dataset_dir(state, dataset_id) / store.WORK_DIR, ignore_errors=True)
    uploads = state.config.datasets_dir / ".uploads"
    if uploads.is_dir():
        cutoff = time.time() - STALE_UPLOAD_S  # a day old: surely no upload of a server still running
        for part in uploads.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
            except OSError:
                pass
    return len(interrupted)


class PreparationRunner:
    """The preparation queue of one app: at most `config.max_preparations` processes at once.
    Only the server that owns the data directory dispatches (like the job queue); any server
    may queue (a 'preparing' row in phase 'queued')."""

    def __init__(self, state: ServerState):
        self.state = state
        self.limit = state.config.max_preparations
        self._context = multiprocessing.get_context("spawn")  # no fork: the server has threads
        self._processes: dict[str, multiprocessing.process.BaseProcess] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        state.add_shutdown_hook(self.stop_all)

    def start_dispatching(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="prepare-queue", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A preparation was queued: look now rather than at the next tick."""
        self._wake.set()

    def running(self) -> list[str]:
        with self._lock:
            return list(self._processes)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a transient database error must not end the queue
                log.exception("preparation queue tick failed")
            self._wake.wait(TICK_S)
            self._wake.clear()

    def tick(self) -> None:
        with self._lock:
            self._reap()
            while len(self._processes) < self.limit and not self._stop.is_set():
                claimed = store.claim_next_queued(self.state.db)
                if claimed is None:
                    break
                self._launch(*claimed)

    def _launch(self, dataset_id: str, params: dict) -> None:
        folder = store.dataset_dir(self.state, dataset_id)
        for stale in (store.DATASET_ZIP, store.REPORT_JSON, store.PREVIEW_PNG):
            (folder / stale).unlink(missing_ok=True)
        limits = asdict(ZipLimits.from_config(self.state.config))
        process = self._context.Process(
            target=run_preparation,
            args=(str(self.state.db.path), dataset_id, str(folder), params, limits),
            name=f"prepare-{dataset_id}",
            # Not daemonic: a daemonic process may not start children, and build_dataset
            # decodes images in worker processes. stop_all() terminates it on shutdown.
            daemon=False,
        )
        try:
            process.start()
        except Exception as exc:  # e.g. out of memory or processes: say so on the dataset
            log.exception("could not start the preparation of dataset %s", dataset_id)
            store.mark_failed(self.state.db, dataset_id, f"could not start the preparation process: {exc}")
            return
        self._processes[dataset_id] = process

    def _reap(self) -> None:
        for dataset_id, process in list(self._processes.items()):
            if process.is_alive():
                continue
            process.join()
            del self._processes[dataset_id]
            if process.exitcode != 0:
                # The child records its own failures; this catches a hard crash (segfault, OOM kill),
                # after which its half-extracted sources are ours to remove.
                log.warning("preparation of dataset %s ended with exit code %s", dataset_id, process.exitcode)
                self._remove_work(dataset_id)
                store.mark_failed(
                    self.state.db, dataset_id,
                    f"the preparation process stopped unexpectedly (exit code {process.exitcode})", only_if_preparing=True,
                )

    def stop_all(self) -> None:
        """Shutdown: end running preparations (failed: prepare again); queued ones stay queued
        and run after the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            running = list(self._processes.items())
            self._processes.clear()
        for dataset_id, process in running:
            process.terminate()
        for dataset_id, process in running:
            process.join(timeout=10)
            self._remove_work(dataset_id)
            store.mark_failed(self.state.db, dataset_id, "preparation was stopped with the server; prepare again", only_if_preparing=True)

    def _remove_work(self, dataset_id: str) -> None:
        shutil.rmtree(store.dataset_dir(self.state, dataset_id) / store.WORK_DIR, ignore_errors=True)
