"""The progress chart of a run (gan_core.reports.chart): read from progress.jsonl whatever
state it is in, drawn with matplotlib, drawn again only when the run has moved on."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from gan_core.data.writer import write_images
from gan_core.reports import chart
from gan_core.train.loop import train
from tests.support.training_data import micro8_config, noise_images


def write_progress(run_dir, events, tail=""):
    run_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(e) + "\n" for e in events) + tail
    (run_dir / chart.PROGRESS_NAME).write_text(text)


def progress(step, G=1.0, **extra):
    return {"event": "progress", "step": step, "steps": 100, "kimg": step * 0.004,
            "losses": {"G": G, "D": 0.5, **extra.pop("losses", {})}, "ada_p": 0.01 * step, "r_t": 0.5,
            "sec_per_kimg": 30.0, **extra}


def pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_progress_is_read_whatever_state_the_file_is_in(tmp_path):
    run_dir = tmp_path / "run"
    events = [
        {"event": "start", "step": 0, "steps": 100},
        progress(10, G=2.0, losses={"r1": 0.3}),
        {"event": "snapshot", "step": 10, "kimg": 0.04, "swd": 0.8, "swd_levels": [1.0, 0.6]},
        progress(20, G=1.5, losses={"pl": float("nan")}),
        {"event": "resumed", "step": 10, "kimg": 0.04},  # resumed from step 10: step 20 is trained again
        progress(20, G=1.2),
        {"event": "snapshot", "step": 20, "kimg": 0.08},  # no metric measured at this one
    ]
    text = "".join(json.dumps(e) + "\n" for e in events)  # NaN is written as NaN: read, and left out
    (run_dir).mkdir()
    (run_dir / chart.PROGRESS_NAME).write_text("not json at all\n" + text + '{"event": "progress", "st')
    (run_dir / chart.CONFIG_NAME).write_text(json.dumps({"aug": "ada", "ada_target": 0.6}))
    data = chart.read_progress(run_dir)
    assert [p["step"] for p in data["progress"]] == [10, 20]
    assert data["progress"][1]["G"] == 1.2  # the newest report of a step trained twice
    assert data["progress"][0]["r1"] == 0.3 and data["progress"][1]["pl"] is None
    assert data["metrics"] == [{"step": 10, "swd": 0.8}]
    assert data["steps"] == 100 and data["step"] == 20 and data["ada_target"] == 0.6

    path = chart.ensure_chart(run_dir)  # the half-written last line does not stop the drawing
    assert path == run_dir / chart.CHART_NAME
    assert Image.open(path).size == (int(chart.FIGSIZE[0] * chart.DPI), int(chart.FIGSIZE[1] * chart.DPI))


def test_no_progress_no_chart_and_an_empty_run_still_draws(tmp_path):
    assert chart.ensure_chart(tmp_path / "nothing") is None
    assert not (tmp_path / "nothing" / chart.CHART_NAME).exists()
    write_progress(tmp_path / "run", [{"event": "start", "step": 0, "steps": 10}])
    assert chart.ensure_chart(tmp_path / "run").is_file()  # empty panels that say so


def test_the_chart_is_drawn_again_only_when_progress_changed(tmp_path):
    run_dir = tmp_path / "run"
    write_progress(run_dir, [progress(10), progress(20)])
    path = chart.ensure_chart(run_dir)
    first, made = pixels(path), os.stat(path).st_mtime_ns
    assert chart.ensure_chart(run_dir) == path and os.stat(path).st_mtime_ns == made

    write_progress(run_dir, [progress(10), progress(20), progress(30, G=0.2)])
    chart.ensure_chart(run_dir)
    assert os.stat(path).st_mtime_ns != made and not np.array_equal(pixels(path), first)


def test_a_training_run_has_a_chart_that_moves_with_it(tmp_path, one_torch_thread):
    data = write_images(tmp_path / "data8.zip", noise_images(12, res=8))
    run_dir = tmp_path / "run"
    train(micro8_config(data, run_dir, steps=3, snapshot_every=3, metrics=("swd",), metric_images=8))
    early = pixels(chart.ensure_chart(run_dir))
    read = chart.read_progress(run_dir)
    assert [p["step"] for p in read["progress"]] == [1, 2, 3] and len(read["metrics"]) == 2  # steps 0 and 3
    assert all(p["G"] is not None and p["D"] is not None and p["sec_per_kimg"] > 0 for p in read["progress"])
    assert read["ada_target"] == pytest.approx(0.6)

    train(micro8_config(data, run_dir, steps=6, snapshot_every=3, metrics=("swd",), metric_images=8))
    assert chart.read_progress(run_dir)["step"] == 6
    later = pixels(chart.ensure_chart(run_dir))
    assert early.shape == later.shape and not np.array_equal(early, later)


def test_write_chart_draws_now(tmp_path):
    run_dir = tmp_path / "run"
    write_progress(run_dir, [progress(10)])
    path = chart.write_chart(run_dir)
    os.utime(path, ns=(1, 1))
    assert chart.write_chart(run_dir) == path and os.stat(path).st_mtime_ns > 1  # drawn although up to date
