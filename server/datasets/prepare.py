"""Background dataset preparation: gan_core.data.build_dataset in its own (spawned) process.

A separate process keeps a slow or crashing build away from the API; the child writes its
progress and outcome straight into SQLite, and a watcher thread in the server reaps it and
records a crash the child could not record itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from server.datasets import store
from server.datasets.safe_zip import UnsafeZipError, ZipLimits, extract_zip
from server.db import Database
from server.state import ServerState

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5  # at most two progress writes a second
EXTRACT_SHARE = 0.05  # share of the progress bar given to unpacking the upload


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


def _summary(report) -> dict:
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


def run_preparation(db_path: str, dataset_id: str, folder: str, params: dict, limits: dict) -> None:
    """Child-process entry point: extract the upload, build the dataset, record the outcome."""
    from gan_core.data import DatasetError, build_dataset  # imported here: only the child needs it

    db = Database(db_path)
    folder_path = Path(folder)
    work = folder_path / store.WORK_DIR
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
        store.mark_ready(db, dataset_id, _summary(summary))
    except (DatasetError, UnsafeZipError) as exc:
        store.mark_failed(db, dataset_id, str(exc))
    except Exception as exc:  # a bug, not bad input: keep the server's view consistent, log the trace
        traceback.print_exc()
        store.mark_failed(db, dataset_id, f"internal error while preparing: {exc.__class__.__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


STALE_UPLOAD_S = 24 * 3600


def recover_after_restart(state: ServerState) -> int:
    """At start-up: fail preparations the last stop cut short, remove their half-extracted
    sources, and drop upload temp files a crash left behind. Returns how many were failed."""
    interrupted = [d["id"] for d in store.list_datasets(state.db) if d["state"] == "preparing"]
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
    """Starts preparation processes and reaps them; one instance per app."""

    def __init__(self, state: ServerState):
        self.state = state
        self._context = multiprocessing.get_context("spawn")  # no fork: the server has threads
        self._processes: dict[str, multiprocessing.process.BaseProcess] = {}
        self._lock = threading.Lock()
        state.add_shutdown_hook(self.stop_all)

    def start(self, dataset_id: str, params: dict) -> None:
        """Caller has already checked `params` (run_preparation's keys) and moved the row to 'preparing'."""
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
        except Exception as exc:
            store.mark_failed(self.state.db, dataset_id, f"could not start the preparation process: {exc}")
            raise
        with self._lock:
            self._processes[dataset_id] = process
        threading.Thread(target=self._reap, args=(dataset_id, process), name=f"reap-{dataset_id}", daemon=True).start()

    def _reap(self, dataset_id: str, process) -> None:
        process.join()
        with self._lock:
            self._processes.pop(dataset_id, None)
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
        with self._lock:
            running = list(self._processes.items())
        for dataset_id, process in running:
            process.terminate()
        for dataset_id, process in running:
            process.join(timeout=10)
            self._remove_work(dataset_id)
            store.mark_failed(self.state.db, dataset_id, "preparation was stopped with the server; prepare again", only_if_preparing=True)

    def _remove_work(self, dataset_id: str) -> None:
        shutil.rmtree(store.dataset_dir(self.state, dataset_id) / store.WORK_DIR, ignore_errors=True)
