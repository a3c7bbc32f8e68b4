"""scripts/gpu_check.sh (issue 18's one-command GPU check) runs here too, at smoke-test size on
the CPU (--device cpu --tiny), so it cannot rot between the sessions that are lent a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def run_check(tmp_path, *args, reference: str = "", timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "REFERENCE_DIR": reference, "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)
    report = json.loads((out / "gpu_check.json").read_text()) if (out / "gpu_check.json").exists() else {}
    return done, report


def test_cheap_sections_write_the_json_and_the_log(tmp_path):
    done, report = run_check(tmp_path, "--device", "cpu", "--tiny", "--only", "env,training")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no reference in ''" in done.stdout
    assert report["sizes"] == "tiny" and list(report["sections"]) == ["env", "training"]
    env = report["sections"]["env"]
    assert env["status"] == "ok" and env["result"]["torch"] and env["result"]["cuda_available"] is False
    training = report["sections"]["training"]["result"]
    rows = training["rows"]
    assert {r["precision"] for r in rows} == {"fp32", "bf16"} and training["skipped_for_time"] == []
    assert all(r["sec_per_kimg"] > 0 and r["net"] == "micro" for r in rows)
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert "===== env" in log and "===== training" in log and '"sec_per_kimg"' in log


@pytest.mark.parametrize("args, words", [
    (("--only", "env,warp_drive"), "unknown section(s) ['warp_drive']"),
    (("--reference", "/nonexistent-ref"), "not an unpacked stylegan2-ada-pytorch"),
])
def test_bad_arguments_are_refused_with_a_reason(tmp_path, args, words):
    done, report = run_check(tmp_path, "--device", "cpu", "--tiny", *args, timeout=60)
    assert done.returncode != 0 and words in done.stdout + done.stderr
    assert report == {}


def test_a_section_that_runs_out_of_budget_is_skipped_not_hung(tmp_path):
    done, report = run_check(tmp_path, "--device", "cpu", "--tiny", "--only", "env", "--budget", "5", timeout=60)
    assert done.returncode == 0
    assert report["sections"]["env"]["status"].startswith("skipped: ")


@pytest.mark.slow
def test_every_section_runs_at_tiny_size_on_the_cpu(tmp_path):
    done, report = run_check(tmp_path, "--device", "cpu", "--tiny", "--budget", "900", timeout=1200)
    sections = report["sections"]
    assert done.returncode == 0, json.dumps(sections, indent=1)[-4000:]
    assert all(s["status"] == "ok" for s in sections.values()), sections
    assert sections["side_by_side"]["result"] == {"skipped": "no --reference folder (see docs/BENCHMARKS.md)"}
    assert sections["stability_fp16"]["result"] == {"skipped": "fp16 is not offered on the CPU"}
    assert sections["pytest_gpu"]["result"]["exit_code"] == 0
    assert "skipped" in sections["pytest_gpu"]["result"]["summary"]
    e2e = sections["e2e"]["result"]
    assert e2e["passed"] and e2e["job_state"] == "completed" and e2e["walk"]["pngs_on_disk"] == 8
    bf16 = sections["stability_bf16"]["result"]
    assert bf16["passed"] and bf16["steps"] == 30 and not bf16["nonfinite_weights"]
    gen = sections["generator"]["result"]["largest"]["results"]
    assert {(r["precision"], r["batch"]) for r in gen} == {("fp32", 1), ("fp32", 4), ("bf16", 1), ("bf16", 4)}
    assert "e2e: job completed, walk 8 frames at 32 px" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "reference" / "training" / "networks.py").is_file(),
                    reason="no ./reference (the git-ignored NVlabs snapshot; docs/BENCHMARKS.md)")
def test_side_by_side_with_the_reference_at_tiny_size(tmp_path):
    pytest.importorskip("scipy", reason="the reference's augmentation imports scipy")
    done, report = run_check(tmp_path, "--device", "cpu", "--tiny", "--only", "side_by_side",
                             reference=str(REPO / "reference"), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = report["sections"]["side_by_side"]["result"]
    assert [c["case"] for c in result["cases"]] == ["off", "ada_p05"]
    for case in result["cases"]:
        assert case["ours_sec_per_kimg"] > 0 and case["reference_sec_per_kimg"] > 0
        assert len(case["rounds_s"]["ours"]) == len(case["rounds_s"]["reference"]) == 2
    assert result["cases"][-1]["ours_profile"]["top_ops"]
    assert "side by side off: ours" in done.stdout
