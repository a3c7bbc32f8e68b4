"""The add-on's bpy-free side of charts and time-lapses (addon/core/media.py): when the
selected job's chart is fetched again, and unpacking the server's frames zip safely."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from addon.core.media import ChartFollower, MediaError, extract_frames
from gan_core.reports import timelapse


def test_the_chart_is_fetched_when_the_job_moved_and_not_more_often_than_the_interval():
    f = ChartFollower(min_interval=5.0)
    assert f.next_fetch("", [0, "running"], 100.0) is None  # no job selected
    assert f.next_fetch("1", [0, "running"], 100.0) == 100.0  # never fetched: now
    f.started("1", 100.0)
    assert f.next_fetch("1", [3, "running"], 101.0) is None  # one fetch at a time
    f.done("1", [0, "running"])
    assert f.next_fetch("1", [0, "running"], 102.0) is None  # what is held is current
    assert f.next_fetch("1", [3, "running"], 102.0) == 105.0  # moved on: after the interval
    assert f.next_fetch("1", [0, "completed"], 200.0) == 200.0  # the end is a change too
    assert f.next_fetch("2", [0, "queued"], 102.0) == 102.0  # another job has its own
    f.started("1", 200.0)
    f.failed()  # no answer: asked again after the interval, the key still wanted
    assert f.next_fetch("1", [0, "completed"], 201.0) == 205.0
    f.forget()
    assert f.next_fetch("1", [0, "completed"], 201.0) == 201.0


def _frames_zip(tmp_path, steps):
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    snaps = []
    for step in steps:
        grid = run / "snapshots" / f"grid-{step:06d}.png"
        Image.fromarray(np.full((32, 32, 3), step % 256, np.uint8)).save(grid)
        snaps.append({"step": step, "kimg": 0.0, "grid": str(grid)})
    timelapse.update_timelapse(run, snaps)
    return timelapse.frames_zip(run)


def test_the_servers_frames_zip_becomes_a_numbered_sequence(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    files, steps = extract_frames(_frames_zip(tmp_path, [0, 50, 100]), str(out))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]
    assert steps == [0, 50, 100]
    assert sorted(p.name for p in out.iterdir()) == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return str(path)


@pytest.mark.parametrize("entries, message", [
    ({"frame_00001.png": b"x", "frame_00003.png": b"y"}, "not numbered 1 to 2"),
    ({"../frame_00001.png": b"x", "sub/frame_00001.png": b"y", "notes.txt": b"z"}, "without frames"),
    ({"frame_00001.png": b"x", "frames.json": b"{not json"}, "not a valid frames zip"),
])
def test_a_broken_frames_zip_is_refused_and_writes_nothing_outside(tmp_path, entries, message):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match=message):
        extract_frames(_zip(tmp_path / "f.zip", entries), str(out))
    assert not (tmp_path / "frame_00001.png").exists()
    assert all(p.name.startswith("frame_") for p in out.iterdir())


def test_not_a_zip_at_all(tmp_path):
    bad = tmp_path / "f.zip"
    bad.write_bytes(b"<html>proxy error</html>")
    with pytest.raises(MediaError, match="not a valid frames zip"):
        extract_frames(str(bad), str(tmp_path))
