"""The run's estimate (time per step, time left, disk) and snapshot retention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gan_core.data.writer import write_images
from gan_core.reports.timelapse import disk_usage
from gan_core.train.config import TrainingConfigError
from gan_core.train.estimate import SLOW_RUN_S, estimate, format_duration, snapshots_to_write
from gan_core.train.loop import train
from gan_core.train.snapshots import list_snapshots, prune_snapshots, record_snapshot, snapshot_files
from tests.support.training_data import micro8_config, noise_images


@pytest.fixture
def data8(tmp_path):
    return write_images(tmp_path / "data8.zip", noise_images(12, res=8))


@pytest.mark.parametrize("step,steps,every,expected", [
    (0, 5000, 500, 10), (0, 10, 4, 3), (4, 10, 4, 2), (10, 10, 4, 0), (3, 4, 2, 1),
])
def test_snapshots_still_to_write(step, steps, every, expected):
    assert snapshots_to_write(step, steps, every) == expected


def test_a_long_cpu_run_gets_a_suggestion_and_a_gpu_run_does_not():
    common = dict(step=1, steps=5000, snapshot_bytes=180_000_000, snapshot_every=500, snapshots_now=1, keep=None,
                  keeps_best=False)
    slow = estimate(sec_per_step=28.9, device_type="cpu", **common)
    assert slow["eta_s"] == pytest.approx(4999 * 28.9) and slow["eta_s"] > SLOW_RUN_S
    assert "GPU" in slow["warning"] and "40.1 h" in slow["warning"]
    assert slow["snapshots_to_write"] == 10 and slow["snapshots_kept"] == 11
    assert slow["disk_bytes"] == 11 * 180_000_000
    assert estimate(sec_per_step=28.9, device_type="cuda", **common)["warning"] is None
    kept = estimate(sec_per_step=0.1, device_type="cpu", **{**common, "keep": 3})
    assert kept["warning"] is None and kept["disk_bytes"] == 3 * 180_000_000


def test_the_time_lapse_is_projected_per_frame_and_kept_whatever_the_retention():
    common = dict(step=4, steps=20, sec_per_step=1.0, snapshot_bytes=1000, snapshot_every=4, snapshots_now=2,
                  keeps_best=False, device_type="cpu")
    est = estimate(keep=1, timelapse_frames=2, timelapse_bytes=300, **common)
    assert est["snapshots_to_write"] == 4 and est["snapshots_kept"] == 1
    assert est["timelapse_bytes"] == 6 * 150  # 2 frames now + 4 to come, at 150 bytes each
    assert est["disk_bytes"] == 1 * 1000 + 900
    assert estimate(keep=None, **common)["timelapse_bytes"] == 0  # no grid: no time-lapse


def test_durations_read_well():
    assert [format_duration(s) for s in (12, 600, 5 * 3600, 4 * 86400)] == ["12 s", "10 min", "5.0 h", "4.0 days"]


def test_a_run_reports_its_estimate_once_and_keeps_only_the_newest_snapshots(tmp_path, data8, one_torch_thread):
    events, sizes = [], {}

    def on_progress(event):
        events.append(event)
        if event["event"] == "snapshot":  # measured now: older snapshots are deleted later
            sizes[event["step"]] = sum(Path(event[k]).stat().st_size for k in ("network", "state", "grid"))

    run_dir = tmp_path / "run"
    train(micro8_config(data8, run_dir, steps=8, snapshot_every=2, keep_snapshots=2), on_progress=on_progress)
    estimates = [e for e in events if e["event"] == "estimate"]
    assert len(estimates) == 1
    trained = sizes[2]  # a snapshot with the optimisers' state, as every later one
    est = estimates[0]
    assert est["step"] == 4 and est["steps"] == 8 and est["sec_per_step"] > 0
    assert abs(est["snapshot_bytes"] - trained) < 0.05 * trained  # torch.save adds a little framing
    assert est["snapshots_to_write"] == 2 and est["snapshots_kept"] == 2  # 6 and 8 to come; 2 kept
    # the time-lapse keeps a frame per snapshot (5 at the end), projected from those on disk
    frames, now = disk_usage(run_dir)
    assert frames == 5 and est["timelapse_bytes"] > 0
    assert abs(est["timelapse_bytes"] - now) < 0.25 * now, (est["timelapse_bytes"], now)
    assert est["disk_bytes"] == 2 * est["snapshot_bytes"] + est["timelapse_bytes"]
    assert [s["step"] for s in list_snapshots(run_dir)] == [6, 8]
    left = sorted(p.name for p in (run_dir / "snapshots").iterdir())
    assert left == ["grid-000006.png", "grid-000008.png", "index.json", "network-000006.json",
                    "network-000006.safetensors", "network-000008.json", "network-000008.safetensors",
                    "state-000006.pt", "state-000008.pt"]
    # the kept snapshots still resume: a longer target continues from step 8
    summary = train(micro8_config(data8, run_dir, steps=10, snapshot_every=2, keep_snapshots=2))
    assert summary["trained_steps"] == 2 and [s["step"] for s in list_snapshots(run_dir)] == [8, 10]


def test_the_best_snapshot_by_metric_is_kept_too(tmp_path):
    run_dir = tmp_path / "run"
    for step, swd in ((0, 0.9), (2, 0.2), (4, 0.5), (6, 0.4)):
        for path in snapshot_files(run_dir, step).values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        record_snapshot(run_dir, step, step / 1000, {"swd": swd})
    assert prune_snapshots(run_dir, keep=1) == [0, 4]
    assert [s["step"] for s in list_snapshots(run_dir)] == [2, 6]
    assert sorted(p.name for p in (run_dir / "snapshots").glob("state-*")) == ["state-000002.pt", "state-000006.pt"]
    index = json.loads((run_dir / "snapshots" / "index.json").read_text())
    assert [s["step"] for s in index["snapshots"]] == [2, 6]


@pytest.mark.parametrize("keep", [0, -1, True, 2.5])
def test_keep_snapshots_must_be_a_positive_whole_number(tmp_path, data8, keep):
    with pytest.raises(TrainingConfigError, match="keep_snapshots"):
        train(micro8_config(data8, tmp_path / "r", keep_snapshots=keep))
