"""`latent-studio dataset build|info` as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "server.cli", "dataset", *args], capture_output=True, text=True, timeout=120)


def test_build_then_info(tmp_path):
    src = tmp_path / "renders"
    src.mkdir()
    for i in range(3):
        small = np.random.default_rng(i).integers(0, 255, (5, 5, 3), dtype=np.uint8)
        Image.fromarray(small).resize((40, 40), Image.BICUBIC).save(src / f"r{i}.png")
    (src / "broken.png").write_text("x")
    out = tmp_path / "ds.zip"
    proc = run_cli("build", str(src), "-o", str(out), "--res", "32", "--crop", "center",
                   "--inflate", "flip", "--processes", "1", "--background", "#102030")
    assert proc.returncode == 0, proc.stderr
    assert "6 images (3 accepted + 3 inflated), 1 rejected" in proc.stdout
    assert "rejected: 1 not_image" in proc.stdout
    with zipfile.ZipFile(out) as zf:
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 6
    info = run_cli("info", str(out))
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["count"] == 6 and data["resolution"] == 32 and data["labels"] is False
    assert data["report"]["counts"]["rejected"] == 1
    assert data["report"]["options"]["background"] == "#102030"


def test_user_errors_are_one_line(tmp_path):
    proc = run_cli("build", str(tmp_path / "nothing"), "-o", str(tmp_path / "o.zip"))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "source not found" in proc.stderr
    proc = run_cli("build", str(tmp_path), "-o", str(tmp_path / "o.zip"), "--res", "100")
    assert proc.returncode == 1 and "power of two" in proc.stderr
    proc = run_cli("build", str(tmp_path), "-o", "o.zip", "--fps", "2", "--every-nth", "3")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr
    (tmp_path / "x.zip").write_text("no")
    proc = run_cli("info", str(tmp_path / "x.zip"))
    assert proc.returncode == 1 and "not a readable zip" in proc.stderr


def test_build_options_reach_the_builder(tmp_path, capsys):
    from server.cli import main

    src = tmp_path / "src"
    src.mkdir()
    small = np.random.default_rng(3).integers(0, 255, (5, 5, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((40, 40), Image.BICUBIC))
    Image.fromarray(base).save(src / "a.png")
    Image.fromarray(np.clip(base.astype(int) + 1, 0, 255).astype(np.uint8)).save(src / "b.png")
    out, report = tmp_path / "o.zip", tmp_path / "elsewhere" / "r.json"
    args = ["dataset", "build", str(src), "-o", str(out), "--res", "32", "--processes", "1", "--quiet",
            "--near-duplicate-distance", "-1", "--max-megapixels", "0.01", "--report", str(report)]
    assert main(args) == 0
    data = json.loads(report.read_text())
    assert data["counts"]["accepted"] == 2  # near-duplicate check off
    assert data["options"]["near_duplicate_distance"] is None and data["options"]["max_pixels"] == 10_000
    assert "2 images" in capsys.readouterr().out
    assert main(args[:-2] + ["--near-duplicate-distance", "4", "--max-megapixels", "0.001"]) == 1
    assert "no usable images" in capsys.readouterr().err  # both 40x40 images exceed 1000 pixels
