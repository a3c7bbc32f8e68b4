"""Write synthetic StyleGAN2-ADA-layout network pickles for the legacy importer's tests.

The reference snapshot pickles its modules through
`torch_utils.persistence._reconstruct_persistent_obj(meta)` and its kwargs as
`dnnlib.util.EasyDict`; neither module exists here. This writer emits those globals by
name (a pure-Python Pickler whose `save_global` knows a few stand-ins), while tensors and
numpy scalars are pickled by torch/numpy themselves, exactly as in a real snapshot.
Nothing here is imported by the library; it only produces test inputs. The tests load
this file by path (tests/data is not a package): see tests/support/legacy_fixture.py.
"""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

FIXTURE = Path(__file__).resolve().parent / "sg2ada_tiny32"


class FakeGlobal:
    """A callable that pickles as the global `module.name` (it is never called here)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists that a reduce function be callable
        raise RuntimeError("a FakeGlobal only names a global; it is never called")


RECONSTRUCT = FakeGlobal("torch_utils.persistence", "_reconstruct_persistent_obj")


class EasyDict(dict):
    """Pickles as `dnnlib.util.EasyDict` (NEWOBJ + SETITEMS, like the reference)."""


class Reduce:
    """An object that pickles as `func(*args)`, func being a FakeGlobal."""

    def __init__(self, func: FakeGlobal, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


class _LayoutPickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def _write_fake_global(self, module: str, name: str, obj) -> None:
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:  # protocol 3 (Python 3.7, the reference's era): the text GLOBAL opcode
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("utf-8"))
        self.memoize(obj)

    def save_fake(self, obj: FakeGlobal) -> None:
        self._write_fake_global(obj.module, obj.name, obj)

    dispatch[FakeGlobal] = save_fake

    def save_global(self, obj, name=None):
        if obj is EasyDict:
            return self._write_fake_global("dnnlib.util", "EasyDict", obj)
        return super().save_global(obj, name)

    dispatch[type] = save_global


def dump(obj, path: Path, protocol: int = 4) -> Path:
    path = Path(path)
    with open(path, "wb") as fh:
        _LayoutPickler(fh, protocol=protocol).dump(obj)
    return path


def easydict(value):
    if isinstance(value, dict):
        return EasyDict({k: easydict(v) for k, v in value.items()})
    return value


# Names the reference gives its buffers (everything else in a state dict is a parameter).
BUFFER_NAMES = {"resample_filter", "noise_const", "w_avg", "p", "Hz_geom", "Hz_fbank"}


def _module_state(params, buffers, children, init_kwargs=None, extra=None):
    """A torch Module __dict__ as the reference pickles it (with _init_args/_init_kwargs)."""
    state = {
        "training": False,
        "_parameters": OrderedDict(params),
        "_buffers": OrderedDict(buffers),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(children),
        "_init_args": (),
        "_init_kwargs": easydict(dict(init_kwargs or {})),
    }
    state.update(extra or {})
    return state


def persistent(class_name: str, state: dict, module_src: str = "# module source omitted\n", version: int = 6):
    meta = {"type": "class", "version": version, "module_src": module_src, "class_name": class_name, "state": state}
    return Reduce(RECONSTRUCT, meta)


def _child_class_name(name: str, top: str) -> str:
    # Plausible reference class names; the importer only relies on them for diagnostics.
    if name in ("mapping",):
        return "MappingNetwork"
    if name == "synthesis":
        return "SynthesisNetwork"
    if name.startswith("b"):
        return "SynthesisBlock" if top == "Generator" else ("DiscriminatorEpilogue" if name == "b4" else "DiscriminatorBlock")
    if name.startswith(("fc", "affine", "embed", "out")):
        return "FullyConnectedLayer"
    if name == "torgb":
        return "ToRGBLayer"
    return "SynthesisLayer" if top == "Generator" else "Conv2dLayer"


def module_tree(state_dict, class_name: str, init_kwargs: dict, module_src: str = "# module source omitted\n"):
    """A reference-layout persistent-object tree holding exactly the tensors of `state_dict`."""

    def node():
        return {"params": OrderedDict(), "buffers": OrderedDict(), "children": OrderedDict()}

    root = node()
    for key, value in state_dict.items():
        *path, leaf = key.split(".")
        cur = root
        for part in path:
            cur = cur["children"].setdefault(part, node())
        tensor = torch.as_tensor(np.asarray(value)).clone()
        if leaf in BUFFER_NAMES:
            cur["buffers"][leaf] = tensor
        else:
            cur["params"][leaf] = torch.nn.Parameter(tensor, requires_grad=False)

    def emit(n, cls, kwargs):
        children = {k: emit(v, _child_class_name(k, class_name), {}) for k, v in n["children"].items()}
        # Plain attributes as the reference keeps them (gains are numpy scalars there).
        extra = {"weight_gain": np.float64(0.125), "activation": "lrelu"} if cls == "FullyConnectedLayer" else {}
        return persistent(cls, _module_state(n["params"], n["buffers"], children, kwargs, extra), module_src)

    return emit(root, class_name, init_kwargs)


def snapshot(G_ema_state, G_kwargs, D_state=None, D_kwargs=None, G_state=None, augment_p=0.25,
             training_set_kwargs=None, module_src="# module source omitted\n"):
    """A dict laid out like the reference training loop's `network-snapshot-*.pkl`."""
    data = {"training_set_kwargs": training_set_kwargs}
    data["G"] = module_tree(G_state if G_state is not None else G_ema_state, "Generator", G_kwargs, module_src)
    data["D"] = module_tree(D_state, "Discriminator", D_kwargs, module_src) if D_state is not None else None
    data["G_ema"] = module_tree(G_ema_state, "Generator", G_kwargs, module_src)
    if augment_p is None:
        data["augment_pipe"] = None
    else:
        aug_state = OrderedDict(p=torch.tensor(float(augment_p)), Hz_geom=torch.zeros(12))
        data["augment_pipe"] = module_tree(aug_state, "AugmentPipe", {"xflip": 1, "rotate90": 1}, module_src)
    return data


def stylegan3_snapshot():
    """The shape of a StyleGAN3 (alias-free) generator: SynthesisInput + L{i}_{size}_{ch} layers."""
    synth_state = OrderedDict()
    synth_state["input.weight"] = torch.zeros(4, 4)
    synth_state["input.freqs"] = torch.zeros(4, 2)
    synth_state["L0_36_512.weight"] = torch.zeros(4, 4, 3, 3)
    synth_state["L1_36_512.weight"] = torch.zeros(4, 4, 3, 3)
    synth = module_tree(synth_state, "SynthesisNetwork", {})
    # Give the synthesis children their StyleGAN3 class names.
    children = synth.args[0]["state"]["_modules"]
    children["input"].args[0]["class_name"] = "SynthesisInput"
    for key in ("L0_36_512", "L1_36_512"):
        children[key].args[0]["class_name"] = "SynthesisLayer"
    mapping = module_tree(OrderedDict({"fc0.weight": torch.zeros(4, 4), "w_avg": torch.zeros(4)}), "MappingNetwork", {})
    G = persistent("Generator", _module_state({}, {}, {"synthesis": synth, "mapping": mapping},
                                   {"z_dim": 4, "c_dim": 0, "w_dim": 4, "img_resolution": 32, "img_channels": 3}))
    return {"G": G, "D": None, "G_ema": G, "augment_pipe": None, "training_set_kwargs": None}


def tensorflow_snapshot():
    """A TF-era StyleGAN2 pickle: a tuple (G, D, Gs) of dnnlib.tflib.network.Network objects."""
    net = FakeGlobal("dnnlib.tflib.network", "Network")
    return tuple(Reduce(net) for _ in range(3))


def os_system_snapshot(command: str):
    """A pickle that would run `command` through os.system if its globals were resolved."""
    return {"G_ema": Reduce(FakeGlobal("os", "system"), command)}


# --- tiny networks for the tests (need gan_core.nn.networks) ---------------------------


def fixture_config() -> dict:
    return json.loads(str(np.load(FIXTURE / "expected.npz")["config"]))


def tiny_G_kwargs(res=16, c_dim=0, layers=2, num_fp16_res=0) -> dict:
    # The reference stores exactly these keys in Generator._init_kwargs.
    return dict(z_dim=16, w_dim=16, mapping_kwargs=dict(num_layers=layers),
                synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=num_fp16_res, conv_clamp=256),
                c_dim=c_dim, img_resolution=res, img_channels=3)


def tiny_D_kwargs(res=16, c_dim=0) -> dict:
    return dict(block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4),
                channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=256,
                c_dim=c_dim, img_resolution=res, img_channels=3)


def random_state(network: torch.nn.Module, seed: int) -> dict:
    """The network's state with every tensor perturbed, so a swapped or skipped tensor shows."""
    gen = torch.Generator().manual_seed(seed)
    return {k: v + torch.randn(v.shape, generator=gen) * 0.1 for k, v in network.state_dict().items()}


def synthetic_snapshot(res=16, c_dim=0, layers=2, num_fp16_res=0, with_D=True, augment_p=0.1, module_src=None):
    """(snapshot data, G_ema state, G state, D state or None) for a tiny random network."""
    from gan_core.nn.networks import build_discriminator, build_generator

    G_kwargs = tiny_G_kwargs(res, c_dim, layers, num_fp16_res)
    G_net = build_generator(G_kwargs)
    G_ema_state, G_state = random_state(G_net, 1), random_state(G_net, 2)
    D_kwargs = tiny_D_kwargs(res, c_dim) if with_D else None
    D_state = random_state(build_discriminator(D_kwargs), 3) if with_D else None
    extra = {"module_src": module_src} if module_src is not None else {}
    data = snapshot(G_ema_state, G_kwargs, D_state, D_kwargs, G_state=G_state, augment_p=augment_p,
                    training_set_kwargs={"class_name": "training.dataset.ImageFolderDataset",
                                         "path": "/data/x.zip", "resolution": res},
                    **extra)
    return data, G_ema_state, G_state, D_state


def assert_state_equal(network: torch.nn.Module, state: dict) -> None:
    ours = network.state_dict()
    assert list(ours) == list(state)
    for key, tensor in state.items():
        assert torch.equal(ours[key], torch.as_tensor(tensor)), key
