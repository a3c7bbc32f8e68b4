"""Data-directory contents as the server leaves them, made without running the server:
a prepared dataset folder and a training run folder with real snapshot files. For tests
of recovery (rebuilding rows from folders) and of snapshot listings."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.images import image_zip
from tests.support.jobs import write_tiny_base_model


def prepared_dataset_folder(datasets_dir: Path, dataset_id: str, resolution: int = 32, images: int = 3) -> Path:
    folder = Path(datasets_dir) / dataset_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.zip").write_bytes(image_zip(images))
    (folder / "dataset.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: only its presence matters
    report = {"resolution": resolution, "counts": {"images": images, "accepted": images, "rejected": 0, "inflated": 0},
              "class_names": []}
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def run_folder(jobs_dir: Path, job_id: int, steps: int, snapshot_steps: list[int], data: str = "",
               resolution: int = 32) -> Path:
    """jobs/<id>/run with config.json and a real (tiny, untrained) network per snapshot step,
    recorded in snapshots/index.json as the training loop records them."""
    from gan_core.train.snapshots import record_snapshot, snapshot_files

    run_dir = Path(jobs_dir) / str(job_id) / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"data": data, "run_dir": str(run_dir), "steps": steps, "batch": 4, "resolution": resolution,
              "preset": "tiny", "aug": "off", "mirror": False, "seed": 0, "snapshot_every": 1, "base": None}
    (run_dir / "config.json").write_text(json.dumps(config))
    for step in snapshot_steps:
        files = snapshot_files(run_dir, step)
        write_tiny_base_model(files["network"])
        files["state"].write_bytes(b"state")
        record_snapshot(run_dir, step, kimg=step * 0.004)
    return run_dir
