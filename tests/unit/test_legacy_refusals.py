"""The pickle importer refuses what it must, with a clear error, and runs nothing."""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict

import pytest
import torch

from gan_core.models.pickle_import import LegacyPickleError, load_sg2ada_pickle
from gan_core.models.safe_unpickle import ALLOWED_GLOBALS
from tests.support.legacy_fixture import PKL, pickles


def refused(path, *fragments):
    with pytest.raises(LegacyPickleError) as info:
        load_sg2ada_pickle(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_error_type_is_a_value_error():
    assert issubclass(LegacyPickleError, ValueError)


def test_fixture_references_only_allow_listed_globals():
    from gan_core.models.safe_unpickle import RestrictedUnpickler

    requested = set()

    class Recording(RestrictedUnpickler):
        def find_class(self, module, name):
            requested.add((module, name))
            return super().find_class(module, name)

    Recording(io.BytesIO(PKL.read_bytes())).load()
    assert requested <= set(ALLOWED_GLOBALS)
    # What a real snapshot needs: the persistence reconstructor, kwargs, tensors, numpy gains.
    assert requested == {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"), ("dnnlib.util", "EasyDict"),
        ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"), ("torch.storage", "_load_from_bytes"),
        ("numpy._core.multiarray", "scalar"), ("numpy", "dtype"),
    }


@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "exec"), ("subprocess", "Popen")])
def test_disallowed_global_is_refused_by_name_and_not_called(tmp_path, module, name):
    marker = tmp_path / "command_ran"
    data = {"G_ema": pickles.Reduce(pickles.FakeGlobal(module, name), f"touch {marker}")}
    path = pickles.dump(data, tmp_path / "evil.pkl")
    refused(path, f"refusing to load global {module}.{name}")
    assert not marker.exists()


def test_os_system_snapshot_helper(tmp_path):
    marker = tmp_path / "command_ran"
    path = pickles.dump(pickles.os_system_snapshot(f"touch {marker}"), tmp_path / "evil.pkl")
    refused(path, "os.system")
    assert not marker.exists()


def test_nothing_outside_the_allow_list_resolves():
    # The allow-list is the whole attack surface: keep it to data constructors.
    allowed = {f"{m}.{n}" for m, n in ALLOWED_GLOBALS}
    assert allowed == {
        "torch_utils.persistence._reconstruct_persistent_obj", "dnnlib.util.EasyDict", "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "torch.storage._load_from_bytes",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
        "builtins.set", "builtins.frozenset",
    }


def test_persistent_ids_are_refused(tmp_path):
    class WithPid(pickle.Pickler):
        def persistent_id(self, obj):
            return "storage-0" if isinstance(obj, bytes) else None

    buf = io.BytesIO()
    WithPid(buf, protocol=4).dump({"G_ema": b"weights"})
    path = tmp_path / "pid.pkl"
    path.write_bytes(buf.getvalue())
    refused(path, "persistent id")


def test_truncated_pickle(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(PKL.read_bytes()[:200_000])
    refused(path, "truncated or corrupt")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pkl"
    path.write_bytes(b"")
    refused(path, "not a Python pickle")


def test_torch_save_zip_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    torch.save({"w": torch.zeros(2)}, path)
    refused(path, "zip archive")


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.pkl"
    path.write_text("hello")
    refused(path, "not a Python pickle")


def test_missing_file_is_a_clear_error(tmp_path):
    refused(tmp_path / "nope.pkl", "no such file")


def test_stylegan3_is_refused(tmp_path):
    path = pickles.dump(pickles.stylegan3_snapshot(), tmp_path / "sg3.pkl")
    refused(path, "StyleGAN3 networks are not supported")


def test_tensorflow_pickle_is_refused(tmp_path):
    path = pickles.dump(pickles.tensorflow_snapshot(), tmp_path / "tf.pkl")
    refused(path, "TensorFlow", "convert")


def test_not_a_snapshot_dict(tmp_path):
    refused(pickles.dump([1, 2, 3], tmp_path / "list.pkl"), "not a StyleGAN2-ADA network snapshot")
    refused(pickles.dump({"G": None}, tmp_path / "nog.pkl"), "no G_ema")


def _fixture_states():
    import numpy as np

    G = OrderedDict((k, torch.from_numpy(v)) for k, v in np.load(pickles.FIXTURE / "G_ema_state.npz").items())
    return G, pickles.fixture_config()


def _real_G_kwargs(config):
    kwargs = {k: v for k, v in config["G_kwargs"].items() if k != "class_name"}
    kwargs.update(c_dim=0, img_resolution=32, img_channels=3)
    return kwargs


def test_missing_key_is_named(tmp_path):
    G, config = _fixture_states()
    del G["synthesis.b8.conv0.weight"]
    path = pickles.dump(pickles.snapshot(G, _real_G_kwargs(config), augment_p=None), tmp_path / "missing.pkl")
    refused(path, "G", "missing 1 key(s): synthesis.b8.conv0.weight")


def test_unexpected_key_is_named(tmp_path):
    G, config = _fixture_states()
    G["synthesis.b8.extra_thing"] = torch.zeros(3)
    path = pickles.dump(pickles.snapshot(G, _real_G_kwargs(config), augment_p=None), tmp_path / "extra.pkl")
    refused(path, "unexpected 1 key(s): synthesis.b8.extra_thing")


def test_wrong_shape_is_named(tmp_path):
    G, config = _fixture_states()
    G["mapping.fc0.weight"] = torch.zeros(64, 32)
    path = pickles.dump(pickles.snapshot(G, _real_G_kwargs(config), augment_p=None), tmp_path / "shape.pkl")
    refused(path, "wrong shape for mapping.fc0.weight: [64, 32], expected [64, 64]")


def test_kwargs_that_disagree_with_tensors(tmp_path):
    G, config = _fixture_states()
    kwargs = _real_G_kwargs(config)
    kwargs["img_resolution"] = 64  # a 64px network has b64 layers the file lacks
    path = pickles.dump(pickles.snapshot(G, kwargs, augment_p=None), tmp_path / "res.pkl")
    refused(path, "missing", "synthesis.b64")


def test_unknown_network_option_is_refused(tmp_path):
    G, config = _fixture_states()
    kwargs = _real_G_kwargs(config)
    kwargs["synthesis_kwargs"] = dict(kwargs["synthesis_kwargs"], warp_speed=9)
    path = pickles.dump(pickles.snapshot(G, kwargs, augment_p=None), tmp_path / "opt.pkl")
    refused(path, "options we cannot build", "warp_speed")


def test_tensor_larger_than_its_storage_is_refused(tmp_path):
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated, but it is what snapshots hold
        torch.save(torch.zeros(4).storage(), buf, _use_new_zipfile_serialization=False)
    storage = pickles.Reduce(pickles.FakeGlobal("torch.storage", "_load_from_bytes"), buf.getvalue())
    tensor = pickles.Reduce(pickles.FakeGlobal("torch._utils", "_rebuild_tensor_v2"), storage, 0, (100, 100), (100, 1),
                      False, OrderedDict())
    path = pickles.dump({"G_ema": tensor}, tmp_path / "big.pkl")
    refused(path, "malformed tensor")


def test_corrupt_storage_bytes_are_refused(tmp_path):
    storage = pickles.Reduce(pickles.FakeGlobal("torch.storage", "_load_from_bytes"), b"\x80\x02garbage")
    path = pickles.dump({"G_ema": storage}, tmp_path / "storage.pkl")
    refused(path, "tensor storage")


def test_persistent_object_that_is_not_a_module(tmp_path):
    obj = pickles.persistent("Generator", {"z_dim": 4})
    refused(pickles.dump({"G_ema": obj}, tmp_path / "nomod.pkl"), "not a torch module")
