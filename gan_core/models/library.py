"""The base-model library: the server's `models/` folder, as a list the UI can show.

Users drop StyleGAN2-ADA `.pkl` files or our `.safetensors` checkpoints into the folder.
A scan imports each pickle once (converting it to a checkpoint via gan_core.models.pickle_import; a
pickle whose sha256 is already in some checkpoint's provenance is skipped), lists the
checkpoints, and lists every file it could not use with the reason. One bad file never
makes the scan fail.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

from gan_core.fileio import atomic_write_text

CACHE_FILE = ".library-cache.json"
# Bump when the importer changes what it accepts, so remembered refusals are retried.
IMPORTER_VERSION = 1
UNSUPPORTED_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".onnx"}

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(models_dir: Path) -> threading.Lock:
    # Two server threads scanning at once must not import the same pickle twice.
    key = str(models_dir.resolve())
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def thumbnail_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.stem + ".thumb.png")


def describe_checkpoint(path: Path) -> dict:
    """The library entry for one checkpoint; raises CheckpointError if it is unreadable."""
    from gan_core.models.checkpoint import read_network_config

    config = read_network_config(path)
    meta = config.get("meta") or {}
    provenance = meta.get("provenance") if isinstance(meta.get("provenance"), dict) else None
    thumb = thumbnail_path(path)
    return {
        "id": path.stem,
        "name": meta.get("name") or path.stem,
        "kind": "imported" if provenance and provenance.get("kind") == "imported" else "checkpoint",
        "path": str(path),
        "resolution": config.get("resolution"),
        "thumbnail": str(thumb) if thumb.is_file() else None,
        "provenance": provenance,
    }


def _load_cache(models_dir: Path) -> dict:
    try:
        cache = json.loads((models_dir / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"importer_version": IMPORTER_VERSION, "hashes": {}, "refused": {}}
    if not isinstance(cache, dict) or cache.get("importer_version") != IMPORTER_VERSION:
        return {"importer_version": IMPORTER_VERSION, "hashes": {}, "refused": {}}
    cache.setdefault("hashes", {})
    cache.setdefault("refused", {})
    return cache


def _cached_sha256(path: Path, cache: dict) -> str:
    """sha256 of a file, reused while its size and mtime are unchanged (pickles are large)."""
    from gan_core.models.pickle_import import file_sha256

    stat = path.stat()
    entry = cache["hashes"].get(path.name)
    if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return entry["sha256"]
    sha = file_sha256(path)
    cache["hashes"][path.name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha}
    return sha


def scan_model_library(models_dir, import_pickles: bool = True) -> dict:
    """{"models": [{id, name, kind, path, resolution, thumbnail, provenance}],
    "refused": [{file, reason}], "pending": [{file}]}.

    With import_pickles=False, pickles not yet imported are listed under "pending"
    instead of being converted (a cheap listing that never waits for a running import).
    Missing folder -> empty lists.
    """
    from gan_core.models.checkpoint import CheckpointError
    from gan_core.models.pickle_import import import_pickle

    models_dir = Path(models_dir)
    result = {"models": [], "refused": [], "pending": []}
    if not models_dir.is_dir():
        return result
    # Only importing scans serialise (they write models); a plain listing never waits
    # behind a long import, it just shows that pickle as pending until it is done.
    with _lock_for(models_dir) if import_pickles else contextlib.nullcontext():
        cache = _load_cache(models_dir)
        cache_before = json.dumps(cache, sort_keys=True)
        known_shas = set()
        files = sorted(p for p in models_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        for path in files:
            if path.suffix.lower() != ".safetensors":
                continue
            try:
                entry = describe_checkpoint(path)
            except (CheckpointError, ValueError, OSError) as exc:
                result["refused"].append({"file": path.name, "reason": str(exc)})
                continue
            result["models"].append(entry)
            if entry["provenance"] and entry["provenance"].get("sha256"):
                known_shas.add(entry["provenance"]["sha256"])

        for path in files:
            suffix = path.suffix.lower()
            if suffix in UNSUPPORTED_SUFFIXES:
                result["refused"].append({"file": path.name, "reason": (
                    f"{suffix} files are not supported: use a StyleGAN2-ADA network snapshot (.pkl) "
                    "or a Latent Studio checkpoint (.safetensors)")})
                continue
            if suffix != ".pkl":
                continue
            try:
                sha = _cached_sha256(path, cache)
            except OSError as exc:
                result["refused"].append({"file": path.name, "reason": f"cannot read the file: {exc}"})
                continue
            if sha in known_shas:
                continue  # already imported
            if sha in cache["refused"]:
                result["refused"].append({"file": path.name, "reason": cache["refused"][sha]})
                continue
            if not import_pickles:
                result["pending"].append({"file": path.name})
                continue
            try:
                target = import_pickle(path, models_dir, sha256=sha)
                entry = describe_checkpoint(target)
            except ValueError as exc:  # LegacyPickleError, CheckpointError, network config errors
                reason = str(exc)
                cache["refused"][sha] = reason
                result["refused"].append({"file": path.name, "reason": reason})
                continue
            except Exception as exc:  # noqa: BLE001 - one broken file must not break the scan
                # Not remembered: could be transient (disk full, out of memory).
                result["refused"].append({"file": path.name, "reason": f"import failed: {type(exc).__name__}: {exc}"})
                continue
            result["models"].append(entry)
            known_shas.add(sha)

        if json.dumps(cache, sort_keys=True) != cache_before:
            try:
                atomic_write_text(models_dir / CACHE_FILE, json.dumps(cache, indent=1, sort_keys=True))
            except OSError:
                pass  # the cache only saves time; a read-only folder still scans
    result["models"].sort(key=lambda m: m["name"].lower())
    return result


def delete_model(models_dir, model_id: str) -> list[Path]:
    """Remove model `model_id` (a checkpoint's stem) from the folder: the checkpoint, its JSON
    sidecar and thumbnail, and the pickle it was imported from if that sits in the folder
    too (else the next scan would import it again). Returns what was removed; a model that
    is not in the folder raises FileNotFoundError."""
    from gan_core.models.checkpoint import sidecar_path

    models_dir = Path(models_dir)
    checkpoint = models_dir / f"{model_id}.safetensors"
    if "/" in model_id or model_id.startswith(".") or not checkpoint.is_file():
        raise FileNotFoundError(f"no model {model_id!r} in the models folder")
    with _lock_for(models_dir):  # not while a scan imports into the folder
        try:
            provenance = describe_checkpoint(checkpoint)["provenance"] or {}
        except ValueError:  # an unreadable checkpoint is still deletable
            provenance = {}
        doomed = [checkpoint, sidecar_path(checkpoint), thumbnail_path(checkpoint)]
        sha = provenance.get("sha256")
        if sha:
            cache = _load_cache(models_dir)
            doomed += [p for p in models_dir.glob("*.pkl") if _cached_sha256(p, cache) == sha]
        removed = []
        for path in doomed:
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed
