"""Our checkpoint formats: exported networks (.safetensors + JSON config) and resumable state.

Network file: tensors `G_ema.<key>` (required), `G.<key>`, `D.<key>` (optional); header
metadata `latent_studio` = JSON config (authoritative); a sidecar `<stem>.json` repeats it
for people and tools. Loading parses the header ourselves first, so a truncated or foreign
file, or tensors that do not match the config, give a CheckpointError that says so.
Nothing here ever unpickles arbitrary objects: safetensors holds raw tensors only, and the
training state is read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

from gan_core.fileio import atomic_path, atomic_write_bytes, atomic_write_text

FORMAT = "latent-studio-network"
FORMAT_VERSION = 1
METADATA_KEY = "latent_studio"
PARTS = ("G_ema", "G", "D")
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors spec's own limit


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read; the message says which file and why."""


def sidecar_path(path) -> Path:
    return Path(path).with_suffix(".json")


# ----------------------------------------------------------------------------- save


def _module_tensors(prefix: str, module: torch.nn.Module) -> dict:
    # contiguous + CPU copies: safetensors needs dense, unshared storage
    return {f"{prefix}.{k}": v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def _init_kwargs(name: str, module) -> dict:
    kwargs = getattr(module, "init_kwargs", None)
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"{name} has no init_kwargs: only gan_core.nn.networks modules can be saved")
    return kwargs


def save_network(path, G_ema, G=None, D=None, meta: dict | None = None, step: int = 0, kimg: float = 0.0,
                 tileable: bool = False) -> Path:
    """Write the networks atomically to `path` (.safetensors) plus the sidecar JSON; returns path.
    `tileable`: the generator was trained in seamless mode, so generation defaults to it."""
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":  # also keeps the sidecar .json from landing on the network
        raise CheckpointError(f"network files end in .safetensors, got {path.name}")
    g_kwargs = _init_kwargs("G_ema", G_ema)
    if G is not None and _init_kwargs("G", G) != g_kwargs:
        raise CheckpointError("G and G_ema were built with different options; they must be the same network")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "G_kwargs": g_kwargs,
        "D_kwargs": _init_kwargs("D", D) if D is not None else None,
        "resolution": int(G_ema.img_resolution),
        "img_channels": int(G_ema.img_channels),
        "z_dim": int(G_ema.z_dim),
        "w_dim": int(G_ema.w_dim),
        "c_dim": int(G_ema.c_dim),
        "step": int(step),
        "kimg": float(kimg),
        "parts": [name for name, m in (("G_ema", G_ema), ("G", G), ("D", D)) if m is not None],
        "meta": meta or {},
        "tileable": bool(tileable),
    }
    try:
        config_text = json.dumps(config, sort_keys=True)
    except TypeError as exc:
        raise CheckpointError(f"checkpoint meta must be JSON-serialisable: {exc}") from exc
    tensors = _module_tensors("G_ema", G_ema)
    if G is not None:
        tensors.update(_module_tensors("G", G))
    if D is not None:
        tensors.update(_module_tensors("D", D))
    # Serialised in memory and written by Python: a full disk then raises OSError (DiskFullError),
    # which safetensors' own file writer would hide inside a generic error.
    atomic_write_bytes(path, save(tensors, metadata={METADATA_KEY: config_text}))
    atomic_write_text(sidecar_path(path), json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


# ----------------------------------------------------------------------------- read


def _read_header(path: Path) -> dict:
    """The safetensors JSON header, after checking the file really holds what it declares."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{path.name} is empty or truncated (not a .safetensors network)")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > _MAX_HEADER_BYTES or 8 + header_len > size:
            raise CheckpointError(f"{path.name} is truncated or not a .safetensors file")
        raw = fh.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path.name} is not a .safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path.name} is not a .safetensors file (bad header)")
    data_len = size - 8 - header_len
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise CheckpointError(f"{path.name}: tensor {name!r} has a malformed entry") from None
        if end > data_len:
            raise CheckpointError(f"{path.name} is truncated: tensor {name!r} lies past the end of the file "
                                  f"({size} bytes); the download or copy was probably cut short")
    return header


def _config_from_header(path: Path, header: dict) -> dict:
    meta = header.get("__metadata__") or {}
    text = meta.get(METADATA_KEY)
    if text is None:
        raise CheckpointError(f"{path.name} is a .safetensors file but not a Latent Studio network "
                              f"(no '{METADATA_KEY}' metadata); StyleGAN .pkl files need `latent-studio import-pkl`")
    try:
        config = json.loads(text)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path.name}: its '{METADATA_KEY}' metadata is not valid JSON") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: metadata does not describe a {FORMAT}")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path.name} has format version {version!r}; this Latent Studio reads up to "
                              f"{FORMAT_VERSION} (update Latent Studio)")
    for key in ("G_kwargs", "z_dim", "w_dim", "c_dim", "resolution", "img_channels"):
        if key not in config:
            raise CheckpointError(f"{path.name}: config lacks {key!r}")
    return config


def network_is_tileable(config) -> bool:
    """Whether a network's config says it was trained seamless (files written before the flag
    existed, imported pickles and bare networks: no)."""
    if not isinstance(config, dict):
        return False
    if "tileable" in config:
        return config["tileable"] is True
    training = (config.get("meta") or {}).get("training") if isinstance(config.get("meta"), dict) else None
    return isinstance(training, dict) and training.get("tileable") is True


def read_network_config(path) -> dict:
    """The JSON config of a network file, reading only its header (cheap, no tensors)."""
    path = Path(path)
    return _config_from_header(path, _read_header(path))


def _checked_parts(path: Path, parts) -> tuple[dict, dict]:
    """(config, {part: module}) after checking the header, the config and each part's tensor
    names and shapes; the modules are built wherever the caller's torch.device context says
    (the meta device: no memory, for a check without loading)."""
    from gan_core.nn.networks import NetworkConfigError, build_discriminator, build_generator

    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise CheckpointError(f"unknown checkpoint part(s) {unknown}: use {', '.join(PARTS)}")
    header = _read_header(path)
    config = _config_from_header(path, header)
    modules = {}
    for part in parts:
        if not any(k.startswith(part + ".") for k in header):
            raise CheckpointError(f"{path.name} holds no {part} network")
        try:
            if part == "D":
                if not config.get("D_kwargs"):
                    raise CheckpointError(f"{path.name} has D tensors but no D_kwargs in its config")
                module = build_discriminator(config["D_kwargs"])
            else:
                module = build_generator(config["G_kwargs"])
        except (NetworkConfigError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path.name}: its config cannot build {part}: {exc}") from None
        _check_tensors(path, part, module, header)
        modules[part] = module
    return config, modules


def check_network_file(path, parts=("G_ema",)) -> dict:
    """Validate a network file without reading its tensors: header, config, every tensor inside
    the file (truncation shows) and each part's tensor names and shapes against its config.
    The parts are built on the meta device, so this costs the same for 4 MB as for 400 MB.
    Returns the config; raises CheckpointError like load_network would."""
    with torch.device("meta"):
        config, _ = _checked_parts(Path(path), parts)
    return config


def _expected_shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _check_tensors(path: Path, part: str, module, header: dict) -> None:
    prefix = part + "."
    stored = {k[len(prefix):]: tuple(v["shape"]) for k, v in header.items()
              if k != "__metadata__" and k.startswith(prefix)}
    wanted = _expected_shapes(module)
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    wrong = sorted(k for k in set(wanted) & set(stored) if wanted[k] != stored[k])
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s) (e.g. {part}.{missing[0]})")
    if extra:
        problems.append(f"{len(extra)} unexpected tensor(s) (e.g. {part}.{extra[0]})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} tensor(s) of the wrong shape (e.g. {part}.{k}: {list(stored[k])}, "
                        f"config needs {list(wanted[k])})")
    if problems:
        raise CheckpointError(f"{path.name}: tensors do not match its config: " + "; ".join(problems))
    for k, info in header.items():
        if k.startswith(prefix) and info.get("dtype") not in ("F32", "F16", "BF16", "F64"):
            raise CheckpointError(f"{path.name}: tensor {k} has dtype {info.get('dtype')}, expected floats")


def load_network(path, device="cpu", parts=("G_ema",)) -> dict:
    """{"config": ..., part: module for each requested part}; modules in eval mode on `device`."""
    from safetensors import safe_open

    path = Path(path)
    config, result = _checked_parts(path, parts)
    result["config"] = config
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            for part in parts:
                module = result[part]
                prefix = part + "."
                state = {k[len(prefix):]: fh.get_tensor(k) for k in fh.keys() if k.startswith(prefix)}
                module.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path.name} could not be read: {exc}") from None
    for part in parts:
        result[part] = result[part].to(device).eval()
    return result


# ----------------------------------------------------------------------------- training state

_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value, where: str) -> None:
    """Only what torch.load(weights_only=True) reads back: tensors, numbers, text, containers."""
    if isinstance(value, (torch.Tensor, *_PLAIN)):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"training state key {where}[{k!r}] must be text or a number")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(f"training state {where} is a {type(value).__name__}; store tensors, numbers, text, "
                          "lists and dicts only (convert numpy arrays to tensors)")


def save_training_state(path, state: dict) -> Path:
    """torch.save(state) atomically; refuses objects a weights_only load could not read."""
    if not isinstance(state, dict):
        raise CheckpointError("training state must be a dict")
    _check_plain(state, "state")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        writer = _WriteErrors(fh)
        try:
            torch.save(state, writer)
        except RuntimeError:
            if writer.error is not None:  # torch reports a failed write as a vague RuntimeError
                raise writer.error from None
            raise
    return path


class _WriteErrors:
    """A file wrapper that remembers the OSError of a failed write (e.g. a full disk), so
    the caller can raise it instead of the RuntimeError torch.save turns it into."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def load_training_state(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training state not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, refused global...
        raise CheckpointError(f"{path.name} is not a readable training state ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path.name} does not hold a training state dict")
    return state


__all__ = ["CheckpointError", "save_network", "network_is_tileable", "read_network_config", "check_network_file", "load_network", "save_training_state",
           "load_training_state", "sidecar_path", "FORMAT", "FORMAT_VERSION"]
