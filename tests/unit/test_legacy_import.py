"""`import_pickle` and `latent-studio import-pkl`: pickle -> our checkpoint + thumbnail."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.models.checkpoint import load_network, read_network_config
from gan_core.models.pickle_import import LICENCE_NOTE, import_pickle
from server.cli import main
from server.cli.import_pkl import default_models_dir
from tests.support.legacy_fixture import PKL, pickles


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    return import_pickle(PKL, models, name="Tiny 32 (fixture)")


@pytest.fixture(scope="module")
def expected():
    return np.load(pickles.FIXTURE / "expected.npz")


def test_imported_checkpoint_loads_all_parts_and_reproduces_fixture(imported, expected):
    nets = load_network(imported, parts=("G_ema", "G", "D"))
    for part, npz in (("G_ema", "G_ema_state.npz"), ("D", "D_state.npz")):
        reference = np.load(pickles.FIXTURE / npz)
        pickles.assert_state_equal(nets[part], {k: reference[k] for k in reference.files})
    z = torch.from_numpy(expected["z"]).float()
    c = torch.zeros([4, 0])
    with torch.no_grad():
        for part, psi, key in (("G_ema", 1.0, "img_psi1"), ("G_ema", 0.7, "img_psi07"), ("G", 1.0, "img_G_psi1")):
            img = nets[part](z, c, truncation_psi=psi, noise_mode="const").numpy()
            assert np.abs(img - expected[key]).max() <= 1e-4, key
        logits = nets["D"](torch.from_numpy(expected["img_psi07"]), c).numpy()
        assert np.abs(logits - expected["d_logits_psi07"]).max() <= 1e-4


def test_imported_checkpoint_records_provenance(imported):
    config = read_network_config(imported)
    assert imported.name == "Tiny-32-fixture.safetensors"
    assert config["meta"]["name"] == "Tiny 32 (fixture)"
    prov = config["meta"]["provenance"]
    assert prov["kind"] == "imported"
    assert prov["source_file"] == "network-snapshot.pkl"
    assert prov["sha256"] == hashlib.sha256(PKL.read_bytes()).hexdigest()
    assert prov["G_kwargs"]["mapping_kwargs"] == {"num_layers": 2}
    assert prov["D_kwargs"]["epilogue_kwargs"] == {"mbstd_group_size": 4}
    assert prov["training_set_kwargs"]["path"] == "/data/tiny32.zip"
    assert prov["augment_p"] == pytest.approx(0.25)
    assert prov["licence"] == LICENCE_NOTE and "NVIDIA Source Code License-NC" in LICENCE_NOTE
    assert config["resolution"] == 32 and config["z_dim"] == 64


def test_thumbnail_is_a_grid_of_seeds_0_to_3_at_psi_07(imported, expected):
    thumb = imported.with_name("Tiny-32-fixture.thumb.png")
    grid = np.asarray(Image.open(io.BytesIO(thumb.read_bytes())).convert("RGB"))
    assert grid.shape == (64, 64, 3)
    ref = expected["img_uint8_psi07"]  # [4, 32, 32, 3], seeds 0..3
    want = np.concatenate([np.concatenate([ref[0], ref[1]], axis=1), np.concatenate([ref[2], ref[3]], axis=1)])
    assert np.abs(grid.astype(int) - want.astype(int)).max() <= 1


def test_conditional_network_imports_with_thumbnail(tmp_path):
    data, G_ema_state, _, _ = pickles.synthetic_snapshot(res=8, c_dim=3)
    target = import_pickle(pickles.dump(data, tmp_path / "cond.pkl"), tmp_path / "models")
    nets = load_network(target, parts=("G_ema",))
    pickles.assert_state_equal(nets["G_ema"], G_ema_state)
    assert nets["config"]["c_dim"] == 3
    assert Image.open(target.with_name("cond.thumb.png")).size == (16, 16)


def test_taken_name_gets_a_suffix_and_nothing_is_overwritten(tmp_path):
    data, _, _, _ = pickles.synthetic_snapshot(res=8, with_D=False, augment_p=None)
    pkl = pickles.dump(data, tmp_path / "net.pkl")
    first = import_pickle(pkl, tmp_path / "models", name="My model")
    before = first.read_bytes()
    second = import_pickle(pkl, tmp_path / "models", name="My model")
    assert (first.name, second.name) == ("My-model.safetensors", "My-model-2.safetensors")
    assert first.read_bytes() == before
    assert second.with_name("My-model-2.thumb.png").is_file()


def test_refused_pickle_writes_nothing(tmp_path):
    marker = tmp_path / "ran"
    pkl = pickles.dump(pickles.os_system_snapshot(f"touch {marker}"), tmp_path / "evil.pkl")
    models = tmp_path / "models"
    models.mkdir()
    (models / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="os.system"):
        import_pickle(pkl, models)
    assert sorted(p.name for p in models.iterdir()) == ["keep.txt"]
    assert not marker.exists()


def test_cli_imports_into_given_models_dir(tmp_path, capsys):
    data, _, _, _ = pickles.synthetic_snapshot(res=8, with_D=False)
    pkl = pickles.dump(data, tmp_path / "cli.pkl")
    assert main(["import-pkl", str(pkl), "-o", str(tmp_path / "m"), "--name", "From CLI"]) == 0
    out = capsys.readouterr().out
    assert "From-CLI.safetensors" in out and "non-commercial" in out
    assert (tmp_path / "m" / "From-CLI.safetensors").is_file()
    assert (tmp_path / "m" / "From-CLI.thumb.png").is_file()


def test_cli_reports_bad_and_missing_files_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(PKL.read_bytes()[:5000])
    assert main(["import-pkl", str(bad), "-o", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("latent-studio import-pkl: error:") and "truncated" in err and "\n" not in err
    assert main(["import-pkl", str(tmp_path / "nope.pkl"), "-o", str(tmp_path / "m")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_default_models_dir_follows_the_server_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LATENT_STUDIO_DATA", str(tmp_path / "data"))
    assert default_models_dir() == tmp_path / "data" / "models"
    monkeypatch.delenv("LATENT_STUDIO_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_models_dir() == tmp_path / "home" / ".latent-studio" / "models"


def test_large_networks_get_downscaled_thumbnail_tiles(tmp_path, monkeypatch):
    import gan_core.models.pickle_import

    monkeypatch.setattr(gan_core.models.pickle_import, "THUMB_TILE_MAX", 8)  # stands in for 256 px with a 16 px net
    data, _, _, _ = pickles.synthetic_snapshot(res=16, with_D=False)
    target = import_pickle(pickles.dump(data, tmp_path / "big.pkl"), tmp_path / "models")
    assert Image.open(target.with_name("big.thumb.png")).size == (16, 16)


@pytest.mark.parametrize("name,stem", [("../../etc/x y", "etc-x-y"), ("FFHQ 256 (mine)", "FFHQ-256-mine"),
                                       ("???", "model"), ("a" * 200, "a" * 80)])
def test_model_names_become_safe_file_stems(name, stem):
    from gan_core.models.pickle_import import model_stem

    assert model_stem(name) == stem


def test_name_with_path_separators_stays_inside_models_dir(tmp_path):
    data, _, _, _ = pickles.synthetic_snapshot(res=8, with_D=False, augment_p=None)
    target = import_pickle(pickles.dump(data, tmp_path / "n.pkl"), tmp_path / "models", name="../outside")
    assert target.parent == tmp_path / "models" and target.name == "outside.safetensors"
    assert not (tmp_path / "outside.safetensors").exists()
