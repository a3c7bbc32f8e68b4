"""Import pretrained StyleGAN2-ADA network snapshots (`network-snapshot-*.pkl`) safely.

`gan_core.models.safe_unpickle` turns the pickle into plain data without executing anything;
this module checks that data against our own networks (kwargs, every key, every shape)
and copies the tensors in. `import_pickle` then writes a Latent Studio checkpoint with
provenance and a thumbnail, so a pickle is read once and never again.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import numpy as np
import torch

from gan_core.fileio import atomic_write_bytes
from gan_core.models.safe_unpickle import (
    STYLEGAN3_HINT,
    LegacyPickleError,
    ModuleRecord,
    plain_data,
    read_snapshot,
)

__all__ = ["LegacyPickleError", "load_sg2ada_pickle", "import_pickle", "file_sha256", "LICENCE_NOTE"]

LICENCE_NOTE = (
    "Imported from a StyleGAN2-ADA pickle. NVIDIA's own pretrained networks are distributed under "
    "the NVIDIA Source Code License-NC (non-commercial use only); networks trained by others carry "
    "their authors' terms. Check that you have the right to use this model for your purpose."
)

# Class names that only the StyleGAN3 (alias-free) generator has.
_STYLEGAN3_CLASSES = {"SynthesisInput"}
_STYLEGAN3_LAYER = re.compile(r"^L\d+_\d+_\d+$")  # synthesis layers named L{idx}_{size}_{channels}


def _reject_stylegan3(record: ModuleRecord) -> None:
    synthesis = record.modules.get("synthesis")
    names = set(record.iter_class_names())
    if names & _STYLEGAN3_CLASSES or (
        synthesis is not None and any(_STYLEGAN3_LAYER.match(k) or k == "input" for k in synthesis.modules)
    ):
        raise LegacyPickleError(STYLEGAN3_HINT)


def _network_kwargs(record: ModuleRecord, part: str) -> dict:
    if record.init_args:
        raise LegacyPickleError(f"{part} in the pickle was built with positional arguments; expected keyword arguments only")
    kwargs = plain_data(record.init_kwargs)
    if not kwargs:
        raise LegacyPickleError(f"{part} in the pickle carries no constructor arguments (_init_kwargs)")
    return kwargs


_G_TOP_KEYS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"}
# Options with no effect on the weights or the numerics: which conv kernel path runs.
_G_IGNORED_KEYS = {"fused_modconv_default"}


def _generator_build_kwargs(kwargs: dict) -> dict:
    """The stylegan3 repository's StyleGAN2 generator takes synthesis options at top level
    (channel_base=..., fused_modconv_default=...); the layout of its weights is the same as
    StyleGAN2-ADA's. Fold those options into synthesis_kwargs; leave the rest to
    build_generator, which names anything it does not know."""
    out = {k: v for k, v in kwargs.items() if k not in _G_IGNORED_KEYS}
    loose = {k: out.pop(k) for k in list(out) if k not in _G_TOP_KEYS and k != "class_name"}
    if loose:
        synthesis = dict(out.get("synthesis_kwargs") or {})
        clash = sorted(k for k in loose if k in synthesis and synthesis[k] != loose[k])
        if clash:
            raise LegacyPickleError(f"the generator options give {', '.join(clash)} twice with different values")
        synthesis.update(loose)
        out["synthesis_kwargs"] = synthesis
    return out


def _copy_state(network: torch.nn.Module, record: ModuleRecord, part: str) -> None:
    """Copy the pickle's tensors into `network`, refusing any missing, extra or misshapen key."""
    theirs = record.state_dict()
    ours = network.state_dict()
    missing = [k for k in ours if k not in theirs]
    unexpected = [k for k in theirs if k not in ours]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        raise LegacyPickleError(f"{part} in the pickle does not match its own configuration: {'; '.join(parts)}")
    for key, tensor in theirs.items():
        if tuple(tensor.shape) != tuple(ours[key].shape):
            raise LegacyPickleError(
                f"{part} in the pickle has a wrong shape for {key}: {list(tensor.shape)}, "
                f"expected {list(ours[key].shape)}"
            )
        if not (tensor.is_floating_point() and torch.isfinite(tensor).all()):
            raise LegacyPickleError(f"{part} in the pickle has non-finite or non-float values in {key}")
    with torch.no_grad():
        for key, tensor in theirs.items():
            ours[key].copy_(tensor)


def _build_part(record, part: str, device: torch.device):
    from gan_core.nn.networks import build_discriminator, build_generator

    if not isinstance(record, ModuleRecord):
        raise LegacyPickleError(f"{part} in the pickle is not a network module")
    is_generator = part.startswith("G")
    expected_class = "Generator" if is_generator else "Discriminator"
    if is_generator:
        _reject_stylegan3(record)
    if record.class_name != expected_class:
        raise LegacyPickleError(f"{part} in the pickle is a {record.class_name!r}, expected a {expected_class}")
    kwargs = _network_kwargs(record, part)
    try:
        if is_generator:
            network = build_generator(_generator_build_kwargs(kwargs))
        else:
            network = build_discriminator(kwargs)
    except LegacyPickleError:
        raise
    except (ValueError, TypeError) as exc:
        raise LegacyPickleError(f"{part} in the pickle uses options we cannot build: {exc}") from exc
    _copy_state(network, record, part)
    return network.eval().requires_grad_(False).to(device), kwargs


def load_sg2ada_pickle(path, device="cpu") -> dict:
    """Load a StyleGAN2-ADA snapshot into our networks, without executing anything from it.

    Returns {"G_ema", "G", "D" (or None), "augment_p" (float or None),
    "training_set_kwargs", "G_kwargs", "D_kwargs"}; the kwargs are the pickle's own (plain
    data), while each network's `init_kwargs` are ours. Raises LegacyPickleError.
    """
    from gan_core.device import resolve_device

    device = resolve_device(device)
    snapshot = read_snapshot(path)
    if "G_ema" not in snapshot or snapshot["G_ema"] is None:
        raise LegacyPickleError(
            "this pickle has no G_ema network; a StyleGAN2-ADA snapshot is a dict with G, D and G_ema"
        )
    G_ema, G_kwargs = _build_part(snapshot["G_ema"], "G_ema", device)
    G = None
    if snapshot.get("G") is not None:
        G, _ = _build_part(snapshot["G"], "G", device)
    D, D_kwargs = None, None
    if snapshot.get("D") is not None:
        D, D_kwargs = _build_part(snapshot["D"], "D", device)
    return {
        "G_ema": G_ema,
        "G": G,
        "D": D,
        "augment_p": _augment_p(snapshot.get("augment_pipe")),
        "training_set_kwargs": _training_set_kwargs(snapshot.get("training_set_kwargs")),
        "G_kwargs": G_kwargs,
        "D_kwargs": D_kwargs,
    }


def _augment_p(record) -> float | None:
    if not isinstance(record, ModuleRecord):
        return None
    p = record.buffers.get("p")
    if p is None or p.numel() != 1:
        return None
    return float(p.reshape(()).item())


def _training_set_kwargs(value):
    if value is None:
        return None
    try:
        return plain_data(value)
    except LegacyPickleError:
        return None  # informational only: an odd value must not block the import


# --- import into the models folder -----------------------------------------------------


def file_sha256(path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def model_stem(name: str) -> str:
    """A file-name-safe stem for a model name ('FFHQ 256 (mine)' -> 'FFHQ-256-mine')."""
    stem = _UNSAFE_NAME.sub("-", name).strip("-.")[:80].strip("-.")  # no leading dot: hidden files
    return stem or "model"


def _free_stem(models_dir: Path, stem: str) -> str:
    candidate, n = stem, 2
    while (models_dir / f"{candidate}.safetensors").exists():
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def import_pickle(pkl_path, models_dir, name=None, *, sha256=None) -> Path:
    """Convert a snapshot pickle into `<models_dir>/<stem>.safetensors` plus `<stem>.thumb.png`.

    The checkpoint's meta records where it came from (file name, sha256, original kwargs,
    training-set kwargs, ADA p) and the licence note. An existing model is never overwritten:
    a taken name gets a numeric suffix. Returns the checkpoint path.
    """
    from gan_core.models.checkpoint import save_network

    pkl_path = Path(pkl_path)
    models_dir = Path(models_dir)
    loaded = load_sg2ada_pickle(pkl_path, device="cpu")
    display_name = name or pkl_path.stem
    provenance = {
        "kind": "imported",
        "source_format": "stylegan2-ada-pickle",
        "source_file": pkl_path.name,
        "sha256": sha256 or file_sha256(pkl_path),
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "G_kwargs": loaded["G_kwargs"],
        "D_kwargs": loaded["D_kwargs"],
        "training_set_kwargs": loaded["training_set_kwargs"],
        "augment_p": loaded["augment_p"],
        "licence": LICENCE_NOTE,
    }
    models_dir.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(models_dir, model_stem(display_name))
    target = models_dir / f"{stem}.safetensors"
    # Render first: a network that cannot run fails here, before anything is written.
    thumbnail = thumbnail_png(loaded["G_ema"])
    save_network(target, loaded["G_ema"], G=loaded["G"], D=loaded["D"],
                 meta={"name": display_name, "provenance": provenance})
    atomic_write_bytes(models_dir / f"{stem}.thumb.png", thumbnail)
    return target


# --- thumbnail -------------------------------------------------------------------------

THUMB_SEEDS = (0, 1, 2, 3)
THUMB_PSI = 0.7
THUMB_TILE_MAX = 256  # px per tile: a 1024px model still gets a small thumbnail


def thumbnail_png(G, seeds=THUMB_SEEDS, psi: float = THUMB_PSI) -> bytes:
    """PNG bytes of a 2x2 (or 1xN) grid of `seeds` (reference seed convention, const noise;
    class 0 for conditional networks), tiles at most THUMB_TILE_MAX px."""
    from PIL import Image

    from gan_core.generate import ModelRunner, encode_png, image_grid

    runner = ModelRunner(G, device=next(G.parameters()).device)
    # batch_size=1: bounded memory when a 1024px network renders on a CPU.
    images = runner.generate(seeds=list(seeds), psi=psi, noise_mode="const",
                             class_idx=0 if G.c_dim else None, batch_size=1)
    size = images.shape[1]
    if size > THUMB_TILE_MAX:
        images = np.stack([np.asarray(Image.fromarray(im).resize((THUMB_TILE_MAX,) * 2, Image.LANCZOS))
                           for im in images])
    return encode_png(image_grid(images, cols=2 if len(images) == 4 else len(images)))
