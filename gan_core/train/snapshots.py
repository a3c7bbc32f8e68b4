"""Snapshots of a training run: where they live, the index, validation and picking one to resume.

Layout (docs/INTERFACES.md): run_dir/snapshots/{network,state,grid}-<step:06d>.*, plus
index.json written LAST, so an entry in the index means all three files were complete.
A snapshot can still be damaged later (disk full, a user's tinkering, a crash of the OS
before data reached the disk): resuming validates by actually loading, and falls back to
the previous snapshot when the newest one is bad.
"""

from __future__ import annotations

import json
import random
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from gan_core.fileio import atomic_write_text
from gan_core.models.checkpoint import check_network_file, load_training_state, sidecar_path

SNAPSHOT_DIR = "snapshots"
INDEX_NAME = "index.json"
STATE_FORMAT = "latent-studio-training-state"
_STATE_RE = re.compile(r"^state-(\d{6,})\.pt$")


def snapshot_dir(run_dir) -> Path:
    return Path(run_dir) / SNAPSHOT_DIR


def snapshot_files(run_dir, step: int) -> dict:
    d = snapshot_dir(run_dir)
    return {"network": d / f"network-{step:06d}.safetensors", "state": d / f"state-{step:06d}.pt",
            "grid": d / f"grid-{step:06d}.png"}


def _entry(run_dir, step: int, kimg: float | None, extra: dict | None = None) -> dict:
    files = snapshot_files(run_dir, step)
    entry = {"step": int(step), "kimg": kimg}
    entry.update({k: str(v) for k, v in files.items()})
    if not files["grid"].is_file():  # runs without a sample grid (grid_size=None)
        entry["grid"] = None
    if extra:
        entry.update(extra)
    return entry


def _read_index(run_dir) -> list[dict] | None:
    path = snapshot_dir(run_dir) / INDEX_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["snapshots"] if isinstance(data, dict) else data
        return [{"step": int(i["step"]), "kimg": i.get("kimg"), "time": i.get("time"),
                 "metrics": i.get("metrics")} for i in items]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_snapshots(run_dir) -> list[dict]:
    """Snapshots recorded in index.json, oldest first, with absolute file paths.

    When index.json is missing or unreadable, falls back to the state files on disk (their
    completeness is then only known once `load_resumable` validates them).
    """
    items = _read_index(run_dir)
    if items is None:
        d = snapshot_dir(run_dir)
        steps = sorted(int(m.group(1)) for p in (d.glob("state-*.pt") if d.is_dir() else [])
                       if (m := _STATE_RE.match(p.name)))
        items = [{"step": s, "kimg": None} for s in steps]
    out = []
    for item in sorted(items, key=lambda i: i["step"]):
        extra = {k: item[k] for k in ("time", "metrics") if item.get(k) is not None}
        out.append(_entry(run_dir, item["step"], item.get("kimg"), extra))
    return out


def write_index(run_dir, entries: list[dict]) -> None:
    rel = []
    for e in sorted(entries, key=lambda e: e["step"]):
        item = {"step": e["step"], "kimg": e.get("kimg"), "time": e.get("time"),
                "network": Path(e["network"]).name, "state": Path(e["state"]).name,
                "grid": Path(e["grid"]).name if e.get("grid") else None}
        if e.get("metrics"):
            item["metrics"] = e["metrics"]
        rel.append(item)
    atomic_write_text(snapshot_dir(run_dir) / INDEX_NAME, json.dumps({"snapshots": rel}, indent=1))


def record_snapshot(run_dir, step: int, kimg: float, metrics: dict | None = None) -> dict:
    """Add (or replace) the entry for `step` in index.json; call after all its files exist."""
    entries = [e for e in list_snapshots(run_dir) if e["step"] != step]
    entry = _entry(run_dir, step, kimg, {"time": time.time()})
    if metrics:
        entry["metrics"] = metrics
    entries.append(entry)
    write_index(run_dir, entries)
    return entry


# Metrics where lower is better; the first one measured picks the "best" snapshot to keep.
LOWER_IS_BETTER = ("fid", "kid", "swd")


def snapshot_bytes(entry: dict) -> int:
    """Disk taken by one snapshot's files."""
    return sum(Path(entry[k]).stat().st_size for k in ("network", "state", "grid")
               if entry.get(k) and Path(entry[k]).is_file())


def best_snapshot(entries: list[dict]) -> dict | None:
    """The entry with the lowest value of the first metric any entry measured, or None."""
    for name in LOWER_IS_BETTER:
        scored = [e for e in entries if isinstance((e.get("metrics") or {}).get(name), (int, float))]
        if scored:
            return min(scored, key=lambda e: e["metrics"][name])
    return None


def prune_snapshots(run_dir, keep: int) -> list[int]:
    """Keep the newest `keep` snapshots and the best one by metric; delete the others' files.

    index.json is rewritten first, so a crash half-way leaves files nobody lists rather
    than a listed snapshot with missing files. Returns the steps deleted.
    """
    entries = list_snapshots(run_dir)
    kept = {e["step"] for e in entries[-keep:]}
    best = best_snapshot(entries)
    if best is not None:
        kept.add(best["step"])
    doomed = [e for e in entries if e["step"] not in kept]
    if not doomed:
        return []
    write_index(run_dir, [e for e in entries if e["step"] in kept])
    for entry in doomed:
        for key in ("network", "state", "grid"):
            if entry.get(key):
                path = Path(entry[key])
                path.unlink(missing_ok=True)
                if key == "network":
                    sidecar_path(path).unlink(missing_ok=True)
    return [e["step"] for e in doomed]


def _check_network(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"network file missing: {path.name}")
    # Header, sizes and shapes only: safetensors has no checksums, so reading every tensor
    # would find nothing more, and it is slow for big models.
    check_network_file(path, parts=("G_ema",))


def _check_state_file(path: Path) -> None:
    """A training state is a torch zip; its central directory sits at the end, so a cut-short
    file fails to open here without unpickling anything."""
    if not path.is_file():
        raise FileNotFoundError(f"state file missing: {path.name}")
    try:
        with zipfile.ZipFile(path) as zf:
            if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in zf.namelist()):
                raise ValueError(f"{path.name} is not a torch training state")
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path.name} is damaged or cut short: {exc}") from None


def load_resumable(run_dir) -> tuple[dict, dict] | tuple[None, None]:
    """(entry, state) of the newest snapshot whose network and state both load, else (None, None).

    Skipped (damaged) snapshots are listed in state["skipped_snapshots"] for the log.
    """
    skipped = []
    for entry in reversed(list_snapshots(run_dir)):
        try:
            _check_network(Path(entry["network"]))
            state = load_training_state(entry["state"])
            if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
                raise ValueError("not a Latent Studio training state")
            if int(state["step"]) != entry["step"]:
                raise ValueError("state step does not match its file name")
        except Exception as exc:  # any failure to load means "damaged": fall back to the previous one
            skipped.append({"step": entry["step"], "reason": f"{type(exc).__name__}: {exc}"})
            continue
        state["skipped_snapshots"] = skipped
        return entry, state
    return None, None


def latest_snapshot(run_dir) -> dict | None:
    """The newest snapshot entry whose files are whole, or None. Cheap: reads headers and zip
    directories, never whole files (`load_resumable` also loads the state it resumes from)."""
    for entry in reversed(list_snapshots(run_dir)):
        try:
            _check_network(Path(entry["network"]))
            _check_state_file(Path(entry["state"]))
        except Exception:  # damaged: the previous one
            continue
        return entry
    return None


# ------------------------------------------------------------------ RNG state (weights_only-safe)

def capture_rng_state() -> dict:
    """torch/CUDA/numpy/python RNG states as tensors, ints and lists only (loadable with weights_only)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "internal": list(py_state[1]), "gauss_next": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
