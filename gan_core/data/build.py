"""`build_dataset`: source images -> StyleGAN2-ADA dataset zip + report.json + preview.png.

The orchestration only: enumerating (dataset_sources), per-image work in worker processes
(dataset_worker via ordered_pool), duplicate checks (dataset_dedup), writing (dataset_writer).
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

from gan_core.data import sources as dataset_sources
from gan_core.data.preview import ThumbnailReservoir, contact_sheet
from gan_core.data.dedup import DEFAULT_NEAR_DISTANCE, DuplicateIndex
from gan_core.data.errors import DatasetBuildCancelled, DatasetError
from gan_core.data.worker import Job, PrepOptions, close_cached_zips, init_worker, process, worker_count
from gan_core.data.writer import StyleGANZipWriter, default_side_paths
from gan_core.fileio import atomic_path, atomic_write_bytes, atomic_write_text
from gan_core.rules import CROP_MODES, INFLATION_ALIASES, INFLATIONS, RuleError, check_choice, check_dataset_resolution
from gan_core.data.decode import DEFAULT_MAX_PIXELS, parse_colour
from gan_core.data.pool import WorkerCrashed, can_spawn_children, ordered_map

REPORT_FORMAT = "latent-studio-dataset-report"
DEFAULT_MIN_STD = 2.0  # per-channel std (0..255) below which an image counts as blank
PROGRESS_INTERVAL_S = 0.2


def parse_inflate(inflate) -> tuple[str, ...]:
    if isinstance(inflate, str):
        inflate = [s for s in inflate.split(",")]
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


def _split_by_class_folder(src: dataset_sources.Source, rejected: list[dict]) -> list[str]:
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


def _make_report(out_zip, src, options, counts, images, rejected, items, class_names, elapsed, note) -> dict:
    return {
        "format": REPORT_FORMAT,
        "format_version": 1,
        "output": str(out_zip),
        "resolution": options["resolution"],
        "source": src.summary(),
        "options": options,
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
        "items": items,
        "elapsed_s": round(elapsed, 3),
        "notes": [note] if note else [],
    }


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
    check_build_options(resolution=resolution, crop=crop, background=background, inflate=inflate, fps=fps,
                        every_nth=every_nth, max_images=max_images, max_source_bytes=max_source_bytes,
                        max_pixels=max_pixels)
    every_nth = int(every_nth) if every_nth is not None else None
    bg = parse_colour(background)
    inflations = parse_inflate(inflate)
    out_zip = Path(out_zip)
    if out_zip.suffix.lower() != ".zip":
        raise DatasetError(f"output must be a .zip file, got {out_zip.name}")
    default_report, default_preview = default_side_paths(out_zip)
    report_path = Path(report_path) if report_path else default_report
    preview_path = Path(preview_path) if preview_path else default_preview
    stop = should_stop or (lambda: False)
    progress = _Progress(on_progress)
    progress(force=True, stage="scanning", done=0, total=0, accepted=0, rejected=0, inflated=0)

    outputs = frozenset(p.resolve() for p in (out_zip, report_path, preview_path))
    src = dataset_sources.open_source(source, fps, every_nth, exclude=outputs)
    if src.kind != "video" and (fps is not None or every_nth is not None):
        raise DatasetError("fps / every_nth only apply to a video source")
    dataset_sources.check_limits(src, max_images, max_source_bytes)

    rejected: list[dict] = [{"file": n, "code": c, "reason": r} for n, c, r in src.refused]
    class_names = _split_by_class_folder(src, rejected) if labels_from_folders else None
    if src.kind != "video" and not src.entries:
        raise DatasetError(f"no images found in {src.path} ({len(rejected)} refused, {len(src.ignored)} non-image files)")

    prep = PrepOptions(resolution, crop, bg, allow_upscale, inflations, seed, max_pixels, min_std)
    labels = {e.name: e.label for e in src.entries}
    n_workers = worker_count(workers)
    note, use_threads = None, False
    if n_workers > 1 and not can_spawn_children():
        # Pillow releases the GIL while decoding, resizing and encoding, so threads still
        # run the heavy parts in parallel.
        use_threads = True
        note = f"running in a daemonic process (no child processes allowed): used {n_workers} threads"

    def jobs() -> Iterator[Job]:
        if src.kind == "video":
            frames = dataset_sources.iter_video_frames(Path(src.path), fps, every_nth, max_images, src.video)
            for i, (name, frame) in enumerate(frames):
                yield Job(i, name, "frame", frame, prep)
        else:
            for i, e in enumerate(src.entries):
                yield Job(i, e.name, e.kind, e.ref, prep)

    counts = Counter(done=len(rejected))  # refusals found while scanning count as done
    total = len(rejected) + (src.video["estimated_frames"] if src.video else len(src.entries))
    items: list[dict] = []
    dedup = DuplicateIndex(near_duplicate_distance)
    thumbs = ThumbnailReservoir(seed=seed)
    class_index = {name: i for i, name in enumerate(class_names or [])}

    def emit(stage: str, force: bool = False) -> None:
        progress(force=force, stage=stage, done=counts["done"], total=max(total, counts["done"]),
                 accepted=counts["accepted"], rejected=len(rejected), inflated=counts["inflated"])

    with atomic_path(out_zip) as tmp_zip:
        writer = StyleGANZipWriter(tmp_zip)
        results = ordered_map(
            process, jobs(), n_workers, initializer=init_worker, initargs=(max_pixels,), threads=use_threads
        )
        try:
            for res in results:
                if stop():
                    raise DatasetBuildCancelled()
                counts["done"] += 1
                verdict = (res.code, res.reason) if res.code else dedup.check(res.pixel_sha256, res.dhash, res.signature)
                if verdict:
                    rejected.append({"file": res.name, "code": verdict[0], "reason": verdict[1]})
                else:
                    dedup.add(res.pixel_sha256, res.dhash, res.name, res.signature)
                    label = class_index[labels[res.name]] if class_names is not None else None
                    thumbs.offer(writer.count, res.thumb)
                    for variant, png in res.pngs:
                        items.append({"image": writer.add(png, label), "source": res.name, "variant": variant})
                    counts["accepted"] += 1
                    counts["inflated"] += len(res.pngs) - 1
                emit("processing")
            if stop():
                raise DatasetBuildCancelled()
            if counts["accepted"] == 0:
                reasons = Counter(r["code"] for r in rejected)
                summary = ", ".join(f"{n} {code}" for code, n in reasons.most_common()) or "nothing decoded"
                raise DatasetError(f"no usable images in {src.path}: {summary}")
            emit("writing", force=True)
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

    if src.kind == "video":
        src.video["frames_read"] = counts["done"]
    elapsed = time.monotonic() - started
    options = {
        "resolution": resolution, "crop": crop, "background": "#%02x%02x%02x" % bg,
        "allow_upscale": allow_upscale, "inflate": list(inflations), "labels_from_folders": labels_from_folders,
        "fps": fps, "every_nth": every_nth, "seed": seed, "max_images": max_images,
        "max_source_bytes": max_source_bytes, "max_pixels": max_pixels,
        "near_duplicate_distance": near_duplicate_distance, "min_std": min_std, "workers": n_workers,
    }
    report = _make_report(out_zip, src, options, counts, writer.count, rejected, items, class_names, elapsed, note)
    atomic_write_text(report_path, json.dumps(report, indent=1))
    buf = io.BytesIO()
    contact_sheet(thumbs.thumbnails()).save(buf, "PNG")
    atomic_write_bytes(preview_path, buf.getvalue())
    report["report_path"], report["preview_path"] = str(report_path), str(preview_path)
    emit("done", force=True)
    return report
