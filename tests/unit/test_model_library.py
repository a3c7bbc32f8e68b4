"""scan_model_library: import dropped-in pickles once, list checkpoints, list refusals."""

from __future__ import annotations

import hashlib
import threading

import pytest

import gan_core.models.pickle_import
from gan_core.models.checkpoint import save_network
from gan_core.models.pickle_import import import_pickle
from gan_core.models.library import scan_model_library
from gan_core.nn.networks import build_generator
from tests.support.legacy_fixture import pickles


def small_pickle(path, res=8, augment_p=None):
    data, _, _, _ = pickles.synthetic_snapshot(res=res, with_D=False, augment_p=augment_p)
    return pickles.dump(data, path)


def forbid_imports(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the scan re-imported a pickle it had already handled")

    monkeypatch.setattr(gan_core.models.pickle_import, "import_pickle", fail)


def test_missing_or_empty_folder(tmp_path):
    assert scan_model_library(tmp_path / "nope") == {"models": [], "refused": [], "pending": []}
    assert scan_model_library(tmp_path) == {"models": [], "refused": [], "pending": []}


def test_scan_imports_good_pickles_and_lists_bad_files_with_reasons(tmp_path):
    marker = tmp_path / "ran"
    models = tmp_path / "models"
    models.mkdir()
    good = small_pickle(models / "good.pkl", res=16)
    (models / "cut.pkl").write_bytes(good.read_bytes()[:3000])
    pickles.dump(pickles.os_system_snapshot(f"touch {marker}"), models / "evil.pkl")
    pickles.dump(pickles.stylegan3_snapshot(), models / "sg3.pkl")
    (models / "weights.pt").write_bytes(b"\x00" * 10)
    (models / "broken.safetensors").write_bytes(b"not really")
    (models / "notes.txt").write_text("ignored")

    result = scan_model_library(models)

    assert not marker.exists()
    assert [m["id"] for m in result["models"]] == ["good"]
    entry = result["models"][0]
    assert entry["kind"] == "imported" and entry["name"] == "good" and entry["resolution"] == 16
    assert entry["path"] == str(models / "good.safetensors")
    assert entry["thumbnail"] == str(models / "good.thumb.png") and (models / "good.thumb.png").is_file()
    assert entry["provenance"]["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    reasons = {r["file"]: r["reason"] for r in result["refused"]}
    assert set(reasons) == {"cut.pkl", "evil.pkl", "sg3.pkl", "weights.pt", "broken.safetensors"}
    assert "truncated" in reasons["cut.pkl"]
    assert "os.system" in reasons["evil.pkl"]
    assert "StyleGAN3" in reasons["sg3.pkl"]
    assert ".pt files are not supported" in reasons["weights.pt"]
    assert "broken.safetensors" in reasons["broken.safetensors"]
    assert result["pending"] == []


def test_second_scan_reuses_imports_and_remembered_refusals(tmp_path, monkeypatch):
    small_pickle(tmp_path / "a.pkl")
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x04junk")
    first = scan_model_library(tmp_path)
    files_after_first = sorted(p.name for p in tmp_path.iterdir())
    forbid_imports(monkeypatch)
    second = scan_model_library(tmp_path)
    assert second == first
    assert sorted(p.name for p in tmp_path.iterdir()) == files_after_first
    assert [r["file"] for r in second["refused"]] == ["bad.pkl"]


def test_pickle_already_imported_under_another_name_is_skipped(tmp_path, monkeypatch):
    pkl = small_pickle(tmp_path / "src.pkl")
    models = tmp_path / "models"
    import_pickle(pkl, models, name="Renamed")
    (models / "copy.pkl").write_bytes(pkl.read_bytes())
    forbid_imports(monkeypatch)
    result = scan_model_library(models)
    assert [(m["id"], m["name"]) for m in result["models"]] == [("Renamed", "Renamed")]
    assert result["refused"] == []


def test_replaced_bad_file_is_retried(tmp_path):
    bad = tmp_path / "net.pkl"
    bad.write_bytes(b"\x80\x04junk")
    assert [r["file"] for r in scan_model_library(tmp_path)["refused"]] == ["net.pkl"]
    small_pickle(tmp_path / "fresh.pkl")
    bad.write_bytes((tmp_path / "fresh.pkl").read_bytes())
    (tmp_path / "fresh.pkl").unlink()
    result = scan_model_library(tmp_path)
    assert result["refused"] == []
    assert [m["id"] for m in result["models"]] == ["net"]


def test_listing_without_import(tmp_path):
    small_pickle(tmp_path / "later.pkl")
    result = scan_model_library(tmp_path, import_pickles=False)
    assert result["models"] == [] and result["pending"] == [{"file": "later.pkl"}]
    assert not (tmp_path / "later.safetensors").exists()


def test_our_own_checkpoints_are_listed(tmp_path):
    G = build_generator(pickles.tiny_G_kwargs(res=8))
    save_network(tmp_path / "trained.safetensors", G, meta={"name": "Trained here"})
    result = scan_model_library(tmp_path)
    assert result["models"] == [{
        "id": "trained", "name": "Trained here", "kind": "checkpoint",
        "path": str(tmp_path / "trained.safetensors"), "resolution": 8, "thumbnail": None, "provenance": None,
    }]


def test_concurrent_scans_import_once(tmp_path):
    small_pickle(tmp_path / "once.pkl")
    results = []
    threads = [threading.Thread(target=lambda: results.append(scan_model_library(tmp_path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 3
    assert all([m["id"] for m in r["models"]] == ["once"] for r in results)
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["once.safetensors"]


@pytest.mark.parametrize("content", [b"", b"\x80"])
def test_empty_and_stub_pickles_are_refused_not_raised(tmp_path, content):
    (tmp_path / "x.pkl").write_bytes(content)
    result = scan_model_library(tmp_path)
    assert result["models"] == [] and len(result["refused"]) == 1 and result["refused"][0]["reason"]


def test_listing_does_not_wait_for_a_running_import(tmp_path):
    from gan_core.models.library import _lock_for

    small_pickle(tmp_path / "big.pkl")
    results = []
    with _lock_for(tmp_path):  # as if another thread were importing right now
        lister = threading.Thread(target=lambda: results.append(scan_model_library(tmp_path, import_pickles=False)))
        lister.start()
        lister.join(timeout=60)
        assert not lister.is_alive(), "the listing waited for the import lock"
    assert results[0]["pending"] == [{"file": "big.pkl"}]
