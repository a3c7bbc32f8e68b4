"""`build_dataset`: source images -> StyleGAN2-ADA dataset zip + report.json + preview.png.

The orchestration only, one small function per step: check the options, open the source
(sources), plan the jobs, run them in workers (worker via pool.ordered_map) while checking
duplicates (dedup) and writing (writer), then the report and the preview.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from gan_core.data import sources
from gan_core.data.decode import DEFAULT_MAX_PIXELS, parse_colour
from gan_core.data.dedup import DEFAULT_NEAR_DISTANCE, DuplicateIndex
from gan_core.data.errors import DatasetBuildCancelled, DatasetError
from gan_core.data.pool import WorkerCrashed, can_spawn_children, ordered_map
from gan_core.data.preview import ThumbnailReservoir, contact_sheet
from gan_core.data.worker import Job, PrepOptions, Result, close_cached_zips, init_worker, process, worker_count
from gan_core.data.writer import StyleGANZipWriter, default_side_paths
from gan_core.fileio import atomic_path, atomic_write_bytes, atomic_write_text
from gan_core.rules import CROP_MODES, INFLATION_ALIASES, INFLATIONS, RuleError, check_choice, check_dataset_resolution

REPORT_FORMAT = "latent-studio-dataset-report"
DEFAULT_MIN_STD = 2.0  # per-channel std (0..255) below which an image counts as blank
PROGRESS_INTERVAL_S = 0.2


# ----------------------------------------------------------------------------- options


def parse_inflate(inflate) -> tuple[str, ...]:
    if isinstance(inflate, str):
        inflate = inflate.split(",")
    names: list[str] = []
    for raw in inflate or ():
        name = INFLATION_ALIASES.get(str(raw).strip().lower(), str(raw).strip().lower())
        if not name:
            continue
        if name not in INFLATIONS:
            raise DatasetError(f"unknown inflation {raw!r}; choose from {', '.join(INFLATIONS)}")
        if name not in names:
            names.append(name)
    return tuple(names)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_build_options(*, resolution=256, crop="center", background="#000000", inflate=(), fps=None,
                        every_nth=None, max_images=25000, max_source_bytes=5 * 10**9,
                        max_pixels=DEFAULT_MAX_PIXELS) -> None:
    """The builder's checks of its options, before any file is read; DatasetError names the first problem.

    The server's prepare route calls this too, so a request is refused exactly when the build would be.
    """
    try:
        check_dataset_resolution(resolution)
        check_choice(crop, CROP_MODES, "crop")
    except RuleError as exc:
        raise DatasetError(str(exc)) from None
    if fps is not None and every_nth is not None:
        raise DatasetError("choose either fps or every_nth for a video, not both")
    if fps is not None and not (_is_number(fps) and fps > 0):
        raise DatasetError(f"fps must be a positive number, got {fps!r}")
    if every_nth is not None and not (_is_number(every_nth) and int(every_nth) == every_nth and every_nth >= 1):
        raise DatasetError(f"every_nth must be a whole number >= 1, got {every_nth!r}")
    for name, value in (("max_images", max_images), ("max_source_bytes", max_source_bytes), ("max_pixels", max_pixels)):
        if not (_is_number(value) and value >= 1):
            raise DatasetError(f"{name} must be a positive number, got {value!r}")
    parse_colour(background)
    parse_inflate(inflate)


@dataclass(frozen=True)
class _Settings:
    """A build's options once checked and normalised: what every later step reads."""

    out_zip: Path
    report_path: Path
    preview_path: Path
    prep: PrepOptions  # the per-image options the workers get
    labels_from_folders: bool
    fps: float | None
    every_nth: int | None
    max_images: int
    max_source_bytes: int
    near_duplicate_distance: int | None

    def report_options(self, workers: int) -> dict:
        prep = self.prep
        return {
            "resolution": prep.resolution, "crop": prep.crop, "background": "#%02x%02x%02x" % prep.background,
            "allow_upscale": prep.allow_upscale, "inflate": list(prep.inflate),
            "labels_from_folders": self.labels_from_folders, "fps": self.fps, "every_nth": self.every_nth,
            "seed": prep.seed, "max_images": self.max_images, "max_source_bytes": self.max_source_bytes,
            "max_pixels": prep.max_pixels, "near_duplicate_distance": self.near_duplicate_distance,
            "min_std": prep.min_std, "workers": workers,
        }


def _checked_settings(out_zip, report_path, preview_path, *, resolution, crop, background, allow_upscale, inflate,
                      labels_from_folders, fps, every_nth, seed, max_images, max_source_bytes, max_pixels,
                      near_duplicate_distance, min_std) -> _Settings:
    """Step 1: refuse bad options before any file is read."""
    check_build_options(resolution=resolution, crop=crop, background=background, inflate=inflate, fps=fps,
                        every_nth=every_nth, max_images=max_images, max_source_bytes=max_source_bytes,
                        max_pixels=max_pixels)
    out_zip = Path(out_zip)
    if out_zip.suffix.lower() != ".zip":
        raise DatasetError(f"output must be a .zip file, got {out_zip.name}")
    default_report, default_preview = default_side_paths(out_zip)
    prep = PrepOptions(resolution, crop, parse_colour(background), allow_upscale, parse_inflate(inflate), seed,
                       max_pixels, min_std)
    return _Settings(
        out_zip=out_zip,
        report_path=Path(report_path) if report_path else default_report,
        preview_path=Path(preview_path) if preview_path else default_preview,
        prep=prep, labels_from_folders=labels_from_folders, fps=fps,
        every_nth=int(every_nth) if every_nth is not None else None,
        max_images=max_images, max_source_bytes=max_source_bytes, near_duplicate_distance=near_duplicate_distance,
    )


# ----------------------------------------------------------------------------- source


def _split_by_class_folder(src: sources.Source, rejected: list[dict]) -> list[str]:
    """Class names from top-level folders; images outside any class folder are rejected."""
    if src.kind == "video":
        raise DatasetError("labels_from_folders needs a folder, zip or file list, not a video")
    class_names = sorted({e.label for e in src.entries if e.label is not None})
    if not class_names:
        raise DatasetError("labels_from_folders: no class sub-folders found (put images in one folder per class)")
    for e in src.entries:
        if e.label is None:
            rejected.append({"file": e.name, "code": "no_class_folder", "reason": "not inside a class folder"})
    src.entries = [e for e in src.entries if e.label is not None]
    return class_names


def _open_source(source, settings: _Settings) -> tuple[sources.Source, list[dict], list[str] | None]:
    """Step 2: enumerate the source and check its limits -> (source, refusals so far, class names)."""
    outputs = frozenset(p.resolve() for p in (settings.out_zip, settings.report_path, settings.preview_path))
    src = sources.open_source(source, settings.fps, settings.every_nth, exclude=outputs)
    if src.kind != "video" and (settings.fps is not None or settings.every_nth is not None):
        raise DatasetError("fps / every_nth only apply to a video source")
    sources.check_limits(src, settings.max_images, settings.max_source_bytes)
    rejected = [{"file": n, "code": c, "reason": r} for n, c, r in src.refused]
    class_names = _split_by_class_folder(src, rejected) if settings.labels_from_folders else None
    if src.kind != "video" and not src.entries:
        raise DatasetError(f"no images found in {src.path} "
                           f"({len(rejected)} refused, {len(src.ignored)} non-image files)")
    return src, rejected, class_names


# ----------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class _Plan:
    """How the per-image work runs."""

    workers: int
    threads: bool  # a thread pool instead of processes
    note: str | None  # for the report: why the plan differs from what was asked


def _plan_workers(workers: int | None) -> _Plan:
    """Step 3a: how many workers, and processes or threads."""
    n_workers = worker_count(workers)
    if n_workers > 1 and not can_spawn_children():
        # Pillow releases the GIL while decoding, resizing and encoding, so threads still
        # run the heavy parts in parallel.
        note = f"running in a daemonic process (no child processes allowed): used {n_workers} threads"
        return _Plan(n_workers, True, note)
    return _Plan(n_workers, False, None)


def _jobs(src: sources.Source, settings: _Settings) -> Iterator[Job]:
    """Step 3b: one job per image or selected video frame, lazily (a video is streamed).
    Results come back in job order (ordered_map), so jobs carry no index."""
    prep = settings.prep
    if src.kind == "video":
        frames = sources.iter_video_frames(Path(src.path), settings.fps, settings.every_nth, settings.max_images,
                                           src.video)
        for name, frame in frames:
            yield Job(name, "frame", frame, prep)
    else:
        for e in src.entries:
            yield Job(e.name, e.kind, e.ref, prep)


# ----------------------------------------------------------------------------- run and write


class _Progress:
    """Rate-limits on_progress so a callback that writes to a database is not flooded."""

    def __init__(self, callback: Callable[[dict], None] | None) -> None:
        self._cb = callback
        self._last = 0.0

    def __call__(self, force: bool = False, **state) -> None:
        if self._cb is None:
            return
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            self._cb(dict(state))


class _Tally:
    """What the build has decided so far: accepted and rejected images, written items,
    duplicates seen, preview thumbnails."""

    def __init__(self, src: sources.Source, settings: _Settings, rejected: list[dict],
                 class_names: list[str] | None, progress: _Progress) -> None:
        self.rejected = rejected
        self.counts = Counter(done=len(rejected))  # refusals found while scanning count as done
        self.total = len(rejected) + (src.video["estimated_frames"] if src.video else len(src.entries))
        self.items: list[dict] = []
        self.dedup = DuplicateIndex(settings.near_duplicate_distance)
        self.thumbs = ThumbnailReservoir(seed=settings.prep.seed)
        self._progress = progress
        self._labels = None
        if class_names is not None:
            class_index = {name: i for i, name in enumerate(class_names)}
            self._labels = {e.name: class_index[e.label] for e in src.entries}

    def take(self, res: Result, writer: StyleGANZipWriter) -> None:
        """Reject the result or write its images."""
        self.counts["done"] += 1
        verdict = (res.code, res.reason) if res.code else self.dedup.check(res.pixel_sha256, res.dhash, res.signature)
        if verdict:
            self.rejected.append({"file": res.name, "code": verdict[0], "reason": verdict[1]})
            return
        self.dedup.add(res.pixel_sha256, res.dhash, res.name, res.signature)
        label = self._labels[res.name] if self._labels is not None else None
        self.thumbs.offer(writer.count, res.thumb)
        for variant, png in res.pngs:
            self.items.append({"image": writer.add(png, label), "source": res.name, "variant": variant})
        self.counts["accepted"] += 1
        self.counts["inflated"] += len(res.pngs) - 1

    def emit(self, stage: str, force: bool = False) -> None:
        c = self.counts
        self._progress(force=force, stage=stage, done=c["done"], total=max(self.total, c["done"]),
                       accepted=c["accepted"], rejected=len(self.rejected), inflated=c["inflated"])

    def check_some_accepted(self, src: sources.Source, resolution: int) -> None:
        if self.counts["accepted"] == 0:
            reasons = Counter(r["code"] for r in self.rejected)
            summary = ", ".join(f"{n} {code}" for code, n in reasons.most_common()) or "nothing decoded"
            hint = ""
            if reasons and reasons.most_common(1)[0][0] == "too_small":
                hint = f"; the images are smaller than {resolution} px: choose a lower resolution or allow upscaling"
            raise DatasetError(f"no usable images in {src.path}: {summary}{hint}")


def _run_and_write(src: sources.Source, settings: _Settings, plan: _Plan, tally: _Tally,
                   class_names: list[str] | None, stop: Callable[[], bool]) -> int:
    """Step 4: process every job in order and write the zip atomically; returns the image count.
    On any error or cancellation nothing is left at out_zip."""
    with atomic_path(settings.out_zip) as tmp_zip:
        writer = StyleGANZipWriter(tmp_zip)
        results = ordered_map(process, _jobs(src, settings), plan.workers, initializer=init_worker,
                              initargs=(settings.prep.max_pixels,), threads=plan.threads)
        try:
            for res in results:
                if stop():
                    raise DatasetBuildCancelled()
                tally.take(res, writer)
                tally.emit("processing")
            if stop():
                raise DatasetBuildCancelled()
            tally.check_some_accepted(src, settings.prep.resolution)
            tally.emit("writing", force=True)
            writer.close(class_names)
        except WorkerCrashed as exc:
            writer.abort()
            raise DatasetError(f"dataset build failed: {exc}") from None
        except BaseException:
            writer.abort()
            raise
        finally:
            results.close()
            close_cached_zips()
    return writer.count


# ----------------------------------------------------------------------------- report and preview


def _make_report(src: sources.Source, settings: _Settings, plan: _Plan, tally: _Tally, images: int,
                 class_names: list[str] | None, elapsed: float) -> dict:
    counts, rejected = tally.counts, tally.rejected
    return {
        "format": REPORT_FORMAT,
        "format_version": 1,
        "output": str(settings.out_zip),
        "resolution": settings.prep.resolution,
        "source": src.summary(),
        "options": settings.report_options(plan.workers),
        "counts": {
            "found": counts["accepted"] + len(rejected),  # every candidate is accepted or rejected
            "accepted": counts["accepted"],
            "rejected": len(rejected),
            "inflated": counts["inflated"],
            "images": images,
            "ignored": len(src.ignored),
        },
        "rejected_by_reason": dict(Counter(r["code"] for r in rejected)),
        "class_names": class_names,
        "rejected": rejected,
        "ignored": src.ignored,
        "items": tally.items,
        "elapsed_s": round(elapsed, 3),
        "notes": [plan.note] if plan.note else [],
    }


def _write_report_and_preview(report: dict, settings: _Settings, tally: _Tally) -> None:
    """Step 5: report.json and the contact sheet beside the zip."""
    atomic_write_text(settings.report_path, json.dumps(report, indent=1))
    buf = io.BytesIO()
    contact_sheet(tally.thumbs.thumbnails()).save(buf, "PNG")
    atomic_write_bytes(settings.preview_path, buf.getvalue())


# ----------------------------------------------------------------------------- the build


def build_dataset(
    source,
    out_zip,
    *,
    resolution: int = 256,
    crop: str = "center",
    background: str = "#000000",
    allow_upscale: bool = False,
    inflate=(),
    labels_from_folders: bool = False,
    fps: float | None = None,
    every_nth: int | None = None,
    seed: int = 0,
    max_images: int = 25000,
    max_source_bytes: int = 5 * 10**9,
    workers: int | None = None,
    report_path=None,
    preview_path=None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    near_duplicate_distance: int | None = DEFAULT_NEAR_DISTANCE,
    min_std: float = DEFAULT_MIN_STD,
) -> dict:
    started = time.monotonic()
    settings = _checked_settings(
        out_zip, report_path, preview_path, resolution=resolution, crop=crop, background=background,
        allow_upscale=allow_upscale, inflate=inflate, labels_from_folders=labels_from_folders, fps=fps,
        every_nth=every_nth, seed=seed, max_images=max_images, max_source_bytes=max_source_bytes,
        max_pixels=max_pixels, near_duplicate_distance=near_duplicate_distance, min_std=min_std)
    progress = _Progress(on_progress)
    progress(force=True, stage="scanning", done=0, total=0, accepted=0, rejected=0, inflated=0)

    src, rejected, class_names = _open_source(source, settings)
    plan = _plan_workers(workers)
    tally = _Tally(src, settings, rejected, class_names, progress)
    images = _run_and_write(src, settings, plan, tally, class_names, should_stop or (lambda: False))

    if src.kind == "video":
        src.video["frames_read"] = tally.counts["done"]
    report = _make_report(src, settings, plan, tally, images, class_names, time.monotonic() - started)
    _write_report_and_preview(report, settings, tally)
    report["report_path"], report["preview_path"] = str(settings.report_path), str(settings.preview_path)
    tally.emit("done", force=True)
    return report
