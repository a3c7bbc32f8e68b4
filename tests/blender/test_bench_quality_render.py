"""The quality benchmark's dataset (benchmarks/bench_quality.py --render-only): the installed
extension's Render Dataset operator in headless Blender renders orbit views of random
procedural scenes, and build_dataset makes the training zip. Small: 24 views, 3 scenes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan_core.data import ZipDataset

pytestmark = pytest.mark.blender

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quality.py"


def test_render_only_builds_a_varied_dataset_of_orbit_renders(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--render-only", "--out", str(out), "--images", "24", "--views-per-scene", "8",
         "--res", "32", "--render-size", "32", "--samples", "4", "--threads", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads((out / "quality.json").read_text())
    rendered = report["dataset"]["rendered"]
    assert [s["views"] for s in rendered["scenes"]] == [8, 8, 8] and rendered["engine"] == "CYCLES"
    assert all(s["objects"] >= 3 for s in rendered["scenes"]), "a shape, 2+ lights and a camera at least"
    folders = sorted(p.name for p in (out / "renders").iterdir())
    assert folders == ["scene_000", "scene_001", "scene_002"]
    assert sorted(os.listdir(out / "renders" / "scene_000")) == [f"view_{i:05d}.png" for i in range(8)]
    # every view reaches the zip unless the builder calls it a duplicate (it says so)
    build = report["dataset"]["build"]
    assert build["accepted"] + build["rejected"] == 24 and build["accepted"] >= 20, build
    ds = ZipDataset(report["dataset"]["path"])
    assert len(ds) == build["accepted"] == report["dataset"]["images"] and ds.resolution == 32
    images = np.stack([ds[i][0].numpy() for i in range(len(ds))]).astype(np.float32)  # [N, 3, 32, 32]
    ds.close()
    assert images.std(axis=(2, 3)).mean() > 5, "views show something, not a blank frame"
    means = images.mean(axis=(2, 3))  # per-image colour: the scenes differ in colour and light
    assert means.std(axis=0).max() > 5, means
    assert "sides" not in report, "render-only trains nothing"
