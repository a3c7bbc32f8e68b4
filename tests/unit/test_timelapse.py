"""The time-lapse of a run (gan_core.reports.timelapse): a frame per snapshot grid with its
step drawn on it, all of one size, and an H.264 MP4 made with the bundled ffmpeg that decodes
to exactly those frames in step order; built as a real (micro) training run goes, kept
through retention and resume, and never able to stop training."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from gan_core.data.writer import write_images
from gan_core.reports import timelapse as tl
from gan_core.train.loop import list_snapshots, train
from tests.support.training_data import micro8_config, noise_images


@pytest.fixture
def data8(tmp_path):
    return write_images(tmp_path / "data8.zip", noise_images(12, res=8))


def decode(path) -> tuple[tuple[int, int], list[np.ndarray]]:
    """(width, height) and every frame of a video, decoded by imageio-ffmpeg's reader."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    return (w, h), frames


def png(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def write_grid(path: Path, size: tuple[int, int], seed: int) -> str:
    """A grid-like picture: 4x4 flat tiles of colours drawn from `seed` (distinct per seed,
    and easy on a video encoder, so decoded frames can be told apart)."""
    tiles = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(tiles).resize(size, Image.Resampling.NEAREST).save(path)
    return str(path)


def synthetic_snapshots(run_dir: Path, steps_and_sizes) -> list[dict]:
    folder = run_dir / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    return [{"step": step, "kimg": step * 0.004, "grid": write_grid(folder / f"grid-{step:06d}.png", size, step)}
            for step, size in steps_and_sizes]


# ------------------------------------------------------------------ a real run

def test_a_training_run_gets_a_frame_per_snapshot_and_a_video_of_them(tmp_path, data8, one_torch_thread):
    run_dir = tmp_path / "run"
    train(micro8_config(data8, run_dir, steps=5, snapshot_every=2))
    steps = [s["step"] for s in list_snapshots(run_dir)]
    assert steps == [0, 2, 4, 5]
    frames = tl.list_frames(run_dir)
    assert [s for s, _ in frames] == steps
    sizes = {Image.open(p).size for _, p in frames}
    # a 2x2 grid of 8 px samples is 16 px: scaled up 16x to 256 px, plus the caption strip
    assert sizes == {(256, 256 + tl._bar_height(256))}

    size, decoded = decode(tl.video_path(run_dir))
    assert size == (256, 276) and len(decoded) == len(steps)
    for frame, (_, path) in zip(decoded, frames):  # H.264 is lossy: close to the PNGs, not equal
        assert np.abs(frame.astype(np.int16) - png(path)).mean() < 8
    info = json.loads((tl.frames_dir(run_dir) / tl.VIDEO_INFO_NAME).read_text())
    assert info["steps"] == steps and info["fps"] == tl.FPS
    events = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert not [e for e in events if e["event"] == "timelapse"]  # nothing went wrong: nothing to say

    # resumed to a new total: frames are added, the video grows with them
    train(micro8_config(data8, run_dir, steps=8, snapshot_every=2))
    assert [s for s, _ in tl.list_frames(run_dir)] == [0, 2, 4, 5, 6, 8]
    assert len(decode(tl.video_path(run_dir))[1]) == 6


def test_frames_outlive_the_snapshots_retention_deletes(tmp_path, data8, one_torch_thread):
    run_dir = tmp_path / "run"
    train(micro8_config(data8, run_dir, steps=6, snapshot_every=2, keep_snapshots=1))
    assert [s["step"] for s in list_snapshots(run_dir)] == [6]
    assert [s for s, _ in tl.list_frames(run_dir)] == [0, 2, 4, 6]
    assert len(decode(tl.video_path(run_dir))[1]) == 4


def test_training_goes_on_without_ffmpeg_and_says_why(tmp_path, data8, one_torch_thread, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-such-ffmpeg"))
    run_dir = tmp_path / "run"
    summary = train(micro8_config(data8, run_dir, steps=2, snapshot_every=1))
    assert summary["step"] == 2 and not summary["stopped"]
    assert not tl.video_path(run_dir).exists()
    assert [s for s, _ in tl.list_frames(run_dir)] == [0, 1, 2]  # the frames are made all the same
    events = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    notes = [e for e in events if e["event"] == "timelapse"]
    assert [e["step"] for e in notes] == [0, 1, 2]
    assert "no ffmpeg" in notes[0]["note"] and "IMAGEIO_FFMPEG_EXE" in notes[0]["note"]

    # with ffmpeg back, the next update makes the video from every frame
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    result = tl.update_timelapse(run_dir, list_snapshots(run_dir))
    assert result["note"] is None and result["added"] == []
    assert len(decode(tl.video_path(run_dir))[1]) == 3


# ------------------------------------------------------------------ frames

def test_the_step_is_drawn_on_the_frame_below_the_samples():
    grid = Image.fromarray(np.full((64, 64, 3), 90, np.uint8))
    a, b = np.asarray(tl.render_frame(grid, 0)), np.asarray(tl.render_frame(grid, 123456, kimg=493.8))
    bar = tl._bar_height(a.shape[1])
    assert a.shape == b.shape == (256 + bar, 256, 3)
    assert np.array_equal(a[:-bar], b[:-bar]) and (a[:-bar] == 90).all()  # the samples untouched
    assert not np.array_equal(a[-bar:], b[-bar:])  # the caption names the step
    assert (a[-bar:] > 200).any()  # light text on the dark strip
    assert tl.caption(123456, 493.8) == "step 123,456   493.8 kimg"


def test_frames_keep_the_first_frames_size_when_grids_differ(tmp_path):
    run_dir = tmp_path / "run"
    snaps = synthetic_snapshots(run_dir, [(0, (300, 200)), (10, (64, 64)), (20, (2000, 900))])
    result = tl.update_timelapse(run_dir, snaps)
    assert result["note"] is None and result["added"] == [0, 10, 20]
    sizes = [Image.open(p).size for _, p in tl.list_frames(run_dir)]
    assert len(set(sizes)) == 1
    w, h = sizes[0]
    assert (w, h) == (300, 200 + tl._bar_height(300)) and w % 2 == 0 and h % 2 == 0
    (vw, vh), decoded = decode(tl.video_path(run_dir))
    assert (vw, vh) == (w, h) and len(decoded) == 3
    # in step order: each decoded frame is closest to its own PNG (the grids are distinct noise)
    pngs = [png(p).astype(np.int16) for _, p in tl.list_frames(run_dir)]
    for i, frame in enumerate(decoded):
        errors = [np.abs(frame.astype(np.int16) - ref).mean() for ref in pngs]
        assert int(np.argmin(errors)) == i and errors[i] < 12, errors


@pytest.mark.parametrize("grid, picture", [((4096, 4096), (1024, 1024)), ((33, 17), (264, 136)),
                                           ((512, 256), (512, 256)), ((1023, 511), (1024, 512))])
def test_frame_sizes_are_even_and_bounded(tmp_path, grid, picture):
    frame = tl.render_frame(Image.new("RGB", grid, (10, 200, 30)), 5)
    assert frame.size == (picture[0], picture[1] + tl._bar_height(picture[0]))
    assert frame.size[0] % 2 == 0 and frame.size[1] % 2 == 0


def test_a_snapshot_again_replaces_its_frame_and_an_unreadable_grid_is_reported(tmp_path):
    run_dir = tmp_path / "run"
    snaps = synthetic_snapshots(run_dir, [(0, (64, 64)), (5, (64, 64))])
    tl.update_timelapse(run_dir, snaps)
    before = tl.frame_path(run_dir, 5).read_bytes()
    write_grid(Path(snaps[1]["grid"]), (64, 64), seed=99)
    tl.add_frame(run_dir, 5, snaps[1]["grid"], 0.02)  # a resumed run wrote step 5 again
    assert tl.frame_path(run_dir, 5).read_bytes() != before

    broken = run_dir / "snapshots" / "grid-000009.png"
    broken.write_bytes(b"not a png")
    result = tl.update_timelapse(run_dir, [*snaps, {"step": 9, "kimg": 0.0, "grid": str(broken)}])
    assert "step 9" in result["note"] and result["frames"] == 2
    assert [s for s, _ in tl.list_frames(run_dir)] == [0, 5]


def test_a_failing_ffmpeg_leaves_the_old_video_and_says_what_it_said(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    snaps = synthetic_snapshots(run_dir, [(0, (64, 64))])
    tl.update_timelapse(run_dir, snaps)
    old = tl.video_path(run_dir).read_bytes()
    broken = tmp_path / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(broken))
    snaps += synthetic_snapshots(run_dir, [(10, (64, 64))])
    result = tl.update_timelapse(run_dir, snaps)
    assert "exit 3" in result["note"] and "Unknown encoder libx264" in result["note"]
    assert tl.video_path(run_dir).read_bytes() == old
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # no half-written file left
    with pytest.raises(tl.TimelapseError, match="no time-lapse frames"):
        tl.build_video(tmp_path / "empty")


# ------------------------------------------------------------------ the image sequence

def test_frames_zip_numbers_the_frames_from_one_in_step_order(tmp_path):
    run_dir = tmp_path / "run"
    assert tl.frames_zip(run_dir) is None
    snaps = synthetic_snapshots(run_dir, [(0, (64, 64)), (500, (64, 64)), (1000, (64, 64))])
    tl.update_timelapse(run_dir, snaps)
    path = tl.frames_zip(run_dir)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["frame_00001.png", "frame_00002.png", "frame_00003.png", "frames.json"]
        assert zf.read("frame_00002.png") == tl.frame_path(run_dir, 500).read_bytes()
        index = json.loads(zf.read("frames.json"))
    assert index["frames"] == [{"frame": 1, "step": 0}, {"frame": 2, "step": 500}, {"frame": 3, "step": 1000}]
    made = os.stat(path).st_mtime_ns
    assert tl.frames_zip(run_dir) == path and os.stat(path).st_mtime_ns == made  # cached
    tl.update_timelapse(run_dir, snaps + synthetic_snapshots(run_dir, [(1500, (64, 64))]))
    with zipfile.ZipFile(tl.frames_zip(run_dir)) as zf:
        assert zf.namelist()[-2:] == ["frame_00004.png", "frames.json"]
