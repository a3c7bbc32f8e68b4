"""benchmarks/bench_quality.py (issue 17's quality benchmark) at smoke-test size: a synthetic
dataset zip instead of renders (tests/blender/test_bench_quality_render.py renders), micro
networks, 4 steps a side, SWD scored at steps 0, 2 and 4. With ./reference (the git-ignored
NVlabs snapshot) the reference side runs too; without it that test is skipped."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from gan_core.data.writer import write_images
from tests.support.training_data import random_discs

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_quality.py"
REFERENCE = REPO / "reference"
# batch 16: 0.064 kimg = 4 steps, scored every 2 steps
SMOKE = ("--kimg", "0.064", "--every-kimg", "0.032", "--net", "micro", "--batch", "16", "--threads", "1")
KIMGS = [0.0, 0.032, 0.064]


def run_bench(tmp_path, *args, timeout=240) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)
    report_path = out / "quality.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return done, report


@pytest.fixture()
def disc_zip(tmp_path):
    return write_images(tmp_path / "discs.zip", random_discs(24, res=32, seed=3))


def check_side(side: dict, seeds: list[str]) -> None:
    assert sorted(side["seeds"]) == seeds
    for run in side["seeds"].values():
        kimgs = [k for k, _ in run["curve"]]
        swds = [s for _, s in run["curve"]]
        assert kimgs == KIMGS, "a score at step 0 and at every interval, the last at the end"
        assert all(math.isfinite(s) and s > 0 for s in swds), swds
        assert len(set(swds)) == len(swds), f"each snapshot scored its own G_ema: {swds}"
        assert run["sec_per_kimg"] > 0 and run["steps"] == 4
    curves = [run["curve"] for run in side["seeds"].values()]
    expected_mean = [sum(c[i][1] for c in curves) / len(curves) for i in range(len(KIMGS))]
    assert [k for k, _ in side["mean"]] == KIMGS
    assert [s for _, s in side["mean"]] == pytest.approx(expected_mean)


def test_our_side_records_swd_at_every_interval_and_draws_the_chart(tmp_path, disc_zip):
    done, report = run_bench(tmp_path, "--dataset", str(disc_zip), "--seeds", "0,1", *SMOKE)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert report["format"] == "latent-studio-bench-quality" and report["torch"] and report["date"]
    assert "--seeds" in report["command"] and report["dataset"]["images"] == 24
    assert report["dataset"]["resolution"] == 32 and report["dataset"]["rendered"] is None
    cfg = report["config"]
    assert cfg["steps"] == 4 and cfg["scored_steps"] == [0, 2, 4] and cfg["seeds"] == [0, 1]
    assert cfg["swd"]["images"] == 24 and cfg["trainer"]["lr"] > 0
    assert list(report["sides"]) == ["ours"]
    check_side(report["sides"]["ours"], ["0", "1"])
    seeds = report["sides"]["ours"]["seeds"]
    assert seeds["0"]["curve"][0][1] != seeds["1"]["curve"][0][1], "each seed starts from its own weights"
    assert "comparison" not in report["summary"]
    assert report["summary"]["ours"]["final_kimg"] == 0.064
    with Image.open(report["chart"]) as chart:
        assert chart.format == "PNG" and chart.size == (800, 500)
    # the run folders keep their progress log, not their snapshots
    run_dir = tmp_path / "out" / "runs" / "ours-seed0"
    assert (run_dir / "progress.jsonl").is_file() and not (run_dir / "snapshots").exists()
    check_combine(tmp_path, report)


def check_combine(tmp_path, report: dict) -> None:
    """--combine merges one-seed reports (seeds run in parallel processes) into the report the
    seeds would have made in one run: the same curves, mean and summary; mismatches refused."""
    from benchmarks import bench_quality

    parts = []
    for seed in ("1", "0"):
        part = json.loads(json.dumps(report))
        part["sides"]["ours"]["seeds"] = {seed: report["sides"]["ours"]["seeds"][seed]}
        part["config"]["seeds"] = [int(seed)]
        path = tmp_path / f"seed{seed}.json"
        path.write_text(json.dumps(part))
        parts.append(str(path))
    merged = bench_quality.main(["--combine", *parts, "--out", str(tmp_path / "merged")])
    assert merged["sides"]["ours"]["seeds"] == report["sides"]["ours"]["seeds"]
    assert merged["sides"]["ours"]["mean"] == report["sides"]["ours"]["mean"]
    assert merged["summary"] == report["summary"] and merged["config"]["seeds"] == [0, 1]
    assert [entry["path"] for entry in merged["combined_from"]] == parts
    assert json.loads((tmp_path / "merged" / "quality.json").read_text())["summary"] == report["summary"]
    assert (tmp_path / "merged" / "quality_swd.png").is_file()

    with pytest.raises(SystemExit, match="seed 0 is in more than one report"):
        bench_quality.main(["--combine", parts[1], parts[1], "--out", str(tmp_path / "twice")])
    other = json.loads(Path(parts[0]).read_text())
    other["config"]["batch"] = 32
    bad = tmp_path / "other-batch.json"
    bad.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="another config"):
        bench_quality.main(["--combine", parts[1], str(bad), "--out", str(tmp_path / "mixed")])
    assert not (tmp_path / "twice").exists() and not (tmp_path / "mixed").exists()


def test_a_dataset_this_script_rendered_keeps_its_render_facts(tmp_path, disc_zip):
    from benchmarks import bench_quality

    info = {"images": 24, "engine": "CYCLES", "scenes": [{"scene": 0, "views": 24}]}
    (disc_zip.parent / "render_info.json").write_text(json.dumps(info))
    args = bench_quality.build_parser().parse_args(["--dataset", str(disc_zip)])
    path, facts = bench_quality.make_dataset(args, tmp_path)
    assert path == disc_zip.resolve() and facts["rendered"] == info and facts["images"] == 24


@pytest.mark.parametrize("args, words", [
    (("--seeds", "0,0"), "seeds must be distinct"),
    (("--seeds", "a"), "seeds must be whole numbers"),
    (("--res", "48"), "--res must be a power of two"),
    (("--kimg", "0"), "--kimg and --every-kimg must be > 0"),
    (("--batch", "0"), "--batch must be at least 1"),
    (("--dataset", "/nonexistent/d.zip"), "no such file"),
    (("--render-only", "--dataset", "x.zip"), "cannot be used with --dataset"),
    (("--reference", "/nonexistent-ref"), "not an unpacked stylegan2-ada-pytorch"),
])
def test_bad_arguments_are_refused_before_any_work(tmp_path, disc_zip, capsys, args, words):
    from benchmarks import bench_quality

    if "--dataset" not in args:
        args = ("--dataset", str(disc_zip), *args)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        bench_quality.main(["--out", str(out), *args])
    assert exc.value.code != 0
    assert words in f"{exc.value.code} {capsys.readouterr().err}"
    assert not out.exists(), "nothing written for a refused command"


@pytest.mark.skipif(not (REFERENCE / "training" / "networks.py").is_file(),
                    reason="no ./reference (the git-ignored NVlabs snapshot; docs/BENCHMARKS.md)")
def test_the_reference_side_is_scored_the_same_way(tmp_path, disc_zip):
    pytest.importorskip("scipy", reason="the reference's augmentation imports scipy")
    done, report = run_bench(tmp_path, "--dataset", str(disc_zip), "--seeds", "0,1", "--reference", str(REFERENCE),
                             *SMOKE)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    sides = report["sides"]
    assert list(sides) == ["ours", "reference"] and sides["reference"]["dir"] == str(REFERENCE.resolve())
    check_side(sides["ours"], ["0", "1"])
    check_side(sides["reference"], ["0", "1"])
    comparison = report["summary"]["comparison"]
    # both start from the same G_ema (our step-0 weights in its classes): the same score at kimg 0
    for seed in ("0", "1"):
        ours0, theirs0 = sides["ours"]["seeds"][seed]["curve"][0][1], sides["reference"]["seeds"][seed]["curve"][0][1]
        assert theirs0 == pytest.approx(ours0, rel=1e-3)
    assert comparison["start_gap"] < 1e-3 * sides["ours"]["mean"][0][1]
    assert [row[0] for row in comparison["at_each_kimg"]] == KIMGS
    assert comparison["seeds"] == 2 and isinstance(comparison["goal_met"], bool)
    assert comparison["goal_met"] == (sides["ours"]["mean"][-1][1] <= sides["reference"]["mean"][-1][1])
    with Image.open(report["chart"]) as chart:
        assert chart.format == "PNG"


def test_training_levers_benchmark_times_each_variant_against_the_default(tmp_path):
    """benchmarks/bench_training_levers.py at smoke size: one step per variant, one round."""
    script = REPO / "benchmarks" / "bench_training_levers.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), "--steps", "1", "--rounds", "1", "--warmup", "0",
                           "--threads", "1", "--variants", "clamp_always,adam_foreach,threads_1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert list(report["variants"]) == ["default", "clamp_always", "adam_foreach", "threads_1"]
    assert report["variants"]["default"]["vs_default"] == 1.0
    for row in report["variants"].values():
        assert row["sec_per_kimg"] > 0 and len(row["rounds_s"]) == 1
    bad = subprocess.run([sys.executable, str(script), "--variants", "warp_drive"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unknown variant" in bad.stderr


@pytest.mark.skipif(not (REFERENCE / "training" / "networks.py").is_file(),
                    reason="no ./reference (the git-ignored NVlabs snapshot; docs/BENCHMARKS.md)")
def test_training_side_by_side_reports_the_convolution_floor(tmp_path):
    pytest.importorskip("scipy", reason="the reference's augmentation imports scipy")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_training.py"), "--reference",
                           str(REFERENCE), "--device", "cpu", "--res", "16", "--net", "micro", "--batch", "4",
                           "--steps", "2", "--rounds", "1", "--warmup", "1", "--threads", "1", "--cases", "off",
                           "--conv-floor-steps", "2"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout)["cases"][0]
    floor = row["conv_floor"]
    for side in ("ours", "reference"):
        assert 0 < floor["conv_s_per_step"][side] < floor["step_s_unprofiled"][side] * 3
        assert 0 < floor["conv_share_of_step"][side]
    assert floor["ratio_floor"] == pytest.approx(
        floor["conv_s_per_step"]["ours"] / floor["step_s_unprofiled"]["reference"], rel=0.01)
