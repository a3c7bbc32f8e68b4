"""Read a StyleGAN2-ADA network pickle as plain data, without executing anything in it.

A reference snapshot is a pickle whose networks are "persistent objects": each module is
rebuilt by `torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta`
carries the Python source of the class (`module_src`) and the object's `__dict__`
(`state`). The reference loader executes that source. We never do: an allow-list of
globals is mapped to small data-only stand-ins, so the result is a tree of
`ModuleRecord`s (class name, init kwargs, parameters, buffers, child modules) holding
ordinary torch tensors. Anything outside the allow-list raises `LegacyPickleError`.
"""

from __future__ import annotations

import io
import pickle
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class LegacyPickleError(ValueError):
    """A network pickle that we cannot or will not load; the message says why."""


# --- data-only stand-ins for the globals a snapshot references -----------------------


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict`: the reference's dict with attribute access.

    Only dict behaviour is needed (pickle rebuilds it with NEWOBJ + SETITEMS)."""


@dataclass
class PersistentObject:
    """What `_reconstruct_persistent_obj(meta)` received: kept as data, never executed."""

    class_name: str
    version: Any
    module_src: str  # the class's Python source: text for provenance only
    state: dict


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict):
        raise LegacyPickleError("malformed persistent object in the pickle (its meta is not a dict)")
    if meta.get("type") != "class":
        raise LegacyPickleError(f"unsupported persistent object type {meta.get('type')!r} in the pickle")
    class_name = meta.get("class_name")
    state = meta.get("state")
    module_src = meta.get("module_src", "")
    if not isinstance(class_name, str) or not isinstance(state, dict) or not isinstance(module_src, str):
        raise LegacyPickleError("malformed persistent object in the pickle (class_name/state/module_src)")
    return PersistentObject(class_name=class_name, version=meta.get("version"), module_src=module_src, state=state)


def _load_storage_from_bytes(data):
    # The reference pickles each storage as a nested legacy `torch.save` stream; torch's
    # own weights-only loader reads that without unpickling arbitrary objects.
    if not isinstance(data, (bytes, bytearray)):
        raise LegacyPickleError("malformed tensor storage in the pickle (expected bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation notices
            storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises several types for corrupt streams
        raise LegacyPickleError(f"a tensor storage in the pickle is corrupt or unsupported ({exc})") from exc
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise LegacyPickleError("malformed tensor storage in the pickle (not a storage)")
    return storage


def _int_tuple(value, what):
    if not isinstance(value, tuple) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise LegacyPickleError(f"malformed tensor in the pickle (bad {what})")
    return value


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise LegacyPickleError("malformed tensor in the pickle (its storage is not a storage)")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise LegacyPickleError("malformed tensor in the pickle (bad storage offset)")
    size = _int_tuple(size, "size")
    stride = _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise LegacyPickleError("malformed tensor in the pickle (size and stride disagree)")
    if backward_hooks:  # hooks are callables: a weights file has no business carrying them
        raise LegacyPickleError("refusing a tensor that carries backward hooks")
    if isinstance(storage, torch.TypedStorage):
        dtype, untyped = storage.dtype, storage._untyped_storage
    else:
        dtype, untyped = torch.uint8, storage
    # set_() would silently grow a too-small storage; a tensor must fit in what was stored.
    if all(size) and storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) >= untyped.nbytes() // dtype.itemsize:
        raise LegacyPickleError("malformed tensor in the pickle (it reaches beyond its storage)")
    tensor = torch.empty((0,), dtype=dtype)
    try:
        tensor.set_(untyped, storage_offset, size, stride)
    except RuntimeError as exc:
        raise LegacyPickleError(f"malformed tensor in the pickle: {exc}") from exc
    return tensor


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, torch.Tensor):
        raise LegacyPickleError("malformed parameter in the pickle (its data is not a tensor)")
    if backward_hooks:
        raise LegacyPickleError("refusing a parameter that carries backward hooks")
    return data  # plain tensor: parameters are re-created by our own modules


def _numpy_multiarray():
    # numpy 2 renamed numpy.core to numpy._core; pickles may name either.
    core = getattr(np, "_core", None)
    if core is None or not hasattr(core, "multiarray"):
        core = np.core
    return core.multiarray


def _numpy_scalar(dtype, *args):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise LegacyPickleError("refusing a numpy scalar of object dtype in the pickle")
    return _numpy_multiarray().scalar(dtype, *args)


def _numpy_dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise LegacyPickleError("refusing a numpy object dtype in the pickle")
    return dtype


# (module, name) -> the stand-in the unpickler hands out. Nothing else resolves.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    # pickle protocol 3 (Python 3.7-era snapshots) spells sets as builtins.set([...])
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}

STYLEGAN3_HINT = "StyleGAN3 networks are not supported yet; only StyleGAN2-ADA (and StyleGAN2) snapshots can be imported"
TENSORFLOW_HINT = (
    "this is a TensorFlow-era StyleGAN/StyleGAN2 pickle (dnnlib.tflib), which is not supported; "
    "convert it to a PyTorch StyleGAN2-ADA snapshot first with the official stylegan2-ada-pytorch "
    "repository (python legacy.py --source=OLD.pkl --dest=NEW.pkl), then import the converted file"
)


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only ALLOWED_GLOBALS and no persistent ids."""

    def find_class(self, module, name):
        stand_in = ALLOWED_GLOBALS.get((module, name))
        if stand_in is not None:
            return stand_in
        if module.startswith("dnnlib.tflib"):
            raise LegacyPickleError(TENSORFLOW_HINT)
        raise LegacyPickleError(f"refusing to load global {module}.{name}: it is not on the allow-list of a network pickle")

    def persistent_load(self, pid):
        raise LegacyPickleError("refusing a pickle that uses persistent ids (not a StyleGAN2-ADA network snapshot)")


# --- from persistent objects to a module tree -----------------------------------------


@dataclass
class ModuleRecord:
    """One torch module as stored in the pickle: enough to rebuild and check ours."""

    class_name: str
    init_args: tuple = ()
    init_kwargs: dict = field(default_factory=dict)
    parameters: "OrderedDict[str, torch.Tensor | None]" = field(default_factory=OrderedDict)
    buffers: "OrderedDict[str, torch.Tensor | None]" = field(default_factory=OrderedDict)
    non_persistent_buffers: frozenset = frozenset()
    modules: "OrderedDict[str, ModuleRecord | None]" = field(default_factory=OrderedDict)
    module_src: str = ""

    def state_dict(self, prefix: str = "") -> "OrderedDict[str, torch.Tensor]":
        """Keys and order exactly as torch's Module.state_dict() would give them."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for name, tensor in self.parameters.items():
            if tensor is not None:
                out[prefix + name] = tensor
        for name, tensor in self.buffers.items():
            if tensor is not None and name not in self.non_persistent_buffers:
                out[prefix + name] = tensor
        for name, child in self.modules.items():
            if child is not None:
                out.update(child.state_dict(prefix + name + "."))
        return out

    def iter_class_names(self):
        yield self.class_name
        for child in self.modules.values():
            if child is not None:
                yield from child.iter_class_names()


def _tensor_dict(value, what, class_name) -> OrderedDict:
    if not isinstance(value, dict):
        raise LegacyPickleError(f"malformed {class_name} in the pickle: {what} is not a dict")
    out = OrderedDict()
    for name, tensor in value.items():
        if tensor is not None and not isinstance(tensor, torch.Tensor):
            raise LegacyPickleError(f"malformed {class_name} in the pickle: {what}[{name!r}] is not a tensor")
        out[name] = tensor
    return out


def to_module_record(obj: PersistentObject, _depth: int = 0) -> ModuleRecord:
    """Turn a persistent object whose state is a Module __dict__ into a ModuleRecord."""
    if _depth > 64:
        raise LegacyPickleError("malformed pickle: modules nested too deeply")
    state = obj.state
    if not all(k in state for k in ("_parameters", "_buffers", "_modules")):
        raise LegacyPickleError(f"persistent object {obj.class_name!r} in the pickle is not a torch module")
    children = OrderedDict()
    raw_children = state["_modules"]
    if not isinstance(raw_children, dict):
        raise LegacyPickleError(f"malformed {obj.class_name} in the pickle: _modules is not a dict")
    for name, child in raw_children.items():
        if child is None:
            children[name] = None
        elif isinstance(child, PersistentObject):
            children[name] = to_module_record(child, _depth + 1)
        else:
            raise LegacyPickleError(f"malformed {obj.class_name} in the pickle: submodule {name!r} is not a network module")
    init_kwargs = state.get("_init_kwargs", {})
    init_args = state.get("_init_args", ())
    if not isinstance(init_kwargs, dict) or not isinstance(init_args, (tuple, list)):
        raise LegacyPickleError(f"malformed {obj.class_name} in the pickle: bad _init_args/_init_kwargs")
    non_persistent = state.get("_non_persistent_buffers_set", set())
    return ModuleRecord(
        class_name=obj.class_name,
        init_args=tuple(init_args),
        init_kwargs=dict(init_kwargs),
        parameters=_tensor_dict(state["_parameters"], "_parameters", obj.class_name),
        buffers=_tensor_dict(state["_buffers"], "_buffers", obj.class_name),
        non_persistent_buffers=frozenset(non_persistent) if isinstance(non_persistent, (set, frozenset)) else frozenset(),
        modules=children,
        module_src=obj.module_src,
    )


def plain_data(value):
    """EasyDicts, tuples and numpy scalars -> JSON-friendly dicts, lists and numbers."""
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise LegacyPickleError(f"unexpected {type(value).__name__} among the network's keyword arguments")


# --- reading a file -------------------------------------------------------------------

_ZIP_MAGIC = b"PK\x03\x04"


def _load_stream(stream) -> Any:
    head = stream.read(4)
    stream.seek(0)
    if head.startswith(_ZIP_MAGIC):
        raise LegacyPickleError(
            "this is a zip archive (e.g. a torch.save checkpoint), not a StyleGAN2-ADA network pickle; "
            "Latent Studio checkpoints are .safetensors files and need no import"
        )
    if not head.startswith(b"\x80"):
        raise LegacyPickleError("this is not a Python pickle (StyleGAN2-ADA snapshots are binary pickles, .pkl)")
    try:
        return RestrictedUnpickler(stream).load()
    except LegacyPickleError:
        raise
    except (EOFError, pickle.UnpicklingError) as exc:
        raise LegacyPickleError(f"the pickle is truncated or corrupt ({exc or type(exc).__name__})") from exc
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, MemoryError, RecursionError) as exc:
        # A stand-in was called with arguments it cannot take: a forged or damaged file.
        raise LegacyPickleError(f"the pickle is malformed ({type(exc).__name__}: {exc})") from exc


def read_snapshot(path: str | Path) -> dict:
    """Read a snapshot file into a dict: network entries become ModuleRecords, the rest stays data."""
    path = Path(path)
    if not path.is_file():
        raise LegacyPickleError(f"no such file: {path}")
    try:
        with open(path, "rb") as stream:  # streamed: a 1024px snapshot is ~350 MB
            raw = _load_stream(stream)
    except OSError as exc:
        raise LegacyPickleError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if not isinstance(raw, dict):
        raise LegacyPickleError("this pickle is not a StyleGAN2-ADA network snapshot (expected a dict with G, D, G_ema)")
    out = {}
    for key, value in raw.items():
        out[key] = to_module_record(value) if isinstance(value, PersistentObject) else value
    return out
