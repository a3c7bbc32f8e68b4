"""benchmarks/check_reference_phases.py: each phase of our step leaves the reference's
gradients, given the same weights, batch, z and RNG seed. Needs ./reference (the git-ignored
NVlabs snapshot, docs/BENCHMARKS.md); skipped without it."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "reference"

pytestmark = [
    pytest.mark.skipif(not (REFERENCE / "training" / "networks.py").is_file(),
                       reason="no ./reference (the git-ignored NVlabs snapshot; docs/BENCHMARKS.md)"),
]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread (see tests/unit/conftest.py)."""


@pytest.fixture(scope="module")
def checker():
    pytest.importorskip("scipy", reason="the reference's augmentation imports scipy")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import check_reference_phases

    return check_reference_phases


def test_every_phase_computes_the_reference_gradients(checker):
    result = checker.check(str(REFERENCE), res=16, batch=4)
    assert len(result["phases"]) == 8
    for name, phase in result["phases"].items():
        assert phase["same_parameters"], (name, phase)
        assert phase["largest_gradient"] > 0, name
        assert phase["max_rel_error"] < 1e-4, (name, phase)
    assert result["pl_mean"]["ours"] == pytest.approx(result["pl_mean"]["reference"], rel=1e-5)
    assert all(m["max_rel_error"] < 1e-5 for m in result["style_mixing"])
    for name, settings in result["optimisers"].items():
        for key, (ours, theirs) in settings.items():
            assert ours == pytest.approx(theirs), (name, key)


def test_the_check_sees_a_changed_rule(checker, monkeypatch):
    """A 1 % larger R1 weight on our side must show in the D R1 phase."""
    from gan_core.train.loss import StyleGAN2Loss

    original = StyleGAN2Loss.d_r1

    def heavier_r1(self, real_img, real_c, gain):
        return original(self, real_img, real_c, gain * 1.01)

    monkeypatch.setattr(StyleGAN2Loss, "d_r1", heavier_r1)
    result = checker.check(str(REFERENCE), res=16, batch=4)
    assert result["phases"]["Dreg#1"]["max_rel_error"] > 5e-3
    assert result["phases"]["Dmain#1"]["max_rel_error"] < 1e-4
