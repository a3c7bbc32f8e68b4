"""Semantic directions in W, in closed form from a generator's own weights (SeFa), and the
walk edits that move along them.

SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021):
every synthesis layer turns w into its style with an affine map A_l (w -> one number per
input channel). The directions n that change the styles most are the unit vectors that
maximise sum_l |A_l n|^2, i.e. the top eigenvectors of A^T A, with A the affine weights of
the chosen layers stacked row-wise. As in the paper each row (one style channel's weights)
is scaled to unit length first, so no channel dominates by its scale alone. Here the
affines of the modulated convs and of the toRGB layers both count: each turns w into
styles. No data, no training: a few milliseconds on the CPU.

A direction belongs to a layer range (`rules.DIRECTION_RANGES`) and moves only the w
indices of that range: [start, end). Ids are "<range>:<rank>" ("coarse:0" = the strongest
coarse direction), stable for a given model file whatever `k` is asked.

Walk edits: ws(frame) = the walk's own latent broadcast to [num_ws, w_dim]
+ sum_k amount_k(frame) * direction_k on layers [start_k, end_k). Truncation psi acts on
the walk's keys (the latents being interpolated), never on these offsets, so an amount
means the same distance in W whatever psi is.

Numpy only: the generator is read through its modules' weights, never run, so the server
and the CLI can call this without a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gan_core import rules


class DirectionError(ValueError):
    """A direction request or a walk's direction edit that cannot be used; the message says why."""


@dataclass(frozen=True)
class Direction:
    """One semantic direction of a model: a unit vector in W applied to w indices [start, end)."""

    id: str  # "<range>:<rank>"
    range: str
    index: int  # rank within the range: 0 = largest eigenvalue
    layers: tuple[int, int]  # [start, end) w indices
    vector: np.ndarray  # float32 [w_dim], unit length, sign fixed (largest-magnitude component > 0)
    eigenvalue: float

    def to_json(self) -> dict:
        return {"id": self.id, "index": self.index, "range": self.range, "layers": list(self.layers),
                "eigenvalue": self.eigenvalue, "vector": [float(v) for v in self.vector]}


# ----------------------------------------------------------------------------- the generator's styles


def _generator(model):
    """A Generator from a Generator or a ModelRunner (anything with `.G`)."""
    G = getattr(model, "G", model)
    if not hasattr(G, "synthesis") or not hasattr(G, "num_ws"):
        raise DirectionError("directions need a StyleGAN2 generator (or a ModelRunner holding one)")
    return G


def style_layers(model) -> list[dict]:
    """Every layer that turns w into styles, in synthesis order:
    [{"w_index", "resolution", "affine"}], read the way SynthesisNetwork.forward hands out ws."""
    synthesis = _generator(model).synthesis
    layers, w_idx = [], 0
    for res in synthesis.block_resolutions:
        block = getattr(synthesis, f"b{res}")
        # A block reads its ws in this order; the toRGB shares its index with the next block's conv0.
        readers = [getattr(block, name, None) for name in ("conv0", "conv1", "torgb")]
        for offset, layer in enumerate(r for r in readers if r is not None):
            layers.append({"w_index": w_idx + offset, "resolution": res, "affine": layer.affine})
        w_idx += block.num_conv
    return layers


def _index_resolutions(model) -> list[int]:
    """For each w index, the highest resolution of the layers that read it."""
    G = _generator(model)
    res = [0] * G.num_ws
    for layer in style_layers(G):
        res[layer["w_index"]] = max(res[layer["w_index"]], layer["resolution"])
    return res


def _range_resolutions(resolutions: list[int], name: str) -> list[int]:
    """The resolutions (of the model's own list) that range `name` covers."""
    if name == "all":
        return list(resolutions)
    if resolutions[-1] >= 64:  # deep enough for the usual bands
        low, high = rules.DIRECTION_RANGE_RESOLUTIONS[name]
        return [r for r in resolutions if r >= low and (high is None or r <= high)]
    # Small models: three nearly equal runs of resolutions, the first ones the longest.
    n = len(resolutions)
    sizes = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    start = sum(sizes[:rules.DIRECTION_RANGES.index(name) - 1])
    return resolutions[start:start + sizes[rules.DIRECTION_RANGES.index(name) - 1]]


def layer_range(model, name: str) -> tuple[int, int]:
    """The w indices [start, end) that range `name` edits in this model."""
    try:
        rules.check_direction_range(name)
    except rules.RuleError as exc:
        raise DirectionError(str(exc)) from None
    per_index = _index_resolutions(model)
    covered = set(_range_resolutions(sorted(set(per_index)), name))
    indices = [i for i, r in enumerate(per_index) if r in covered]
    if not indices:
        raise DirectionError(f"this {per_index[-1]} px model has too few layers for a {name!r} range; "
                             f"use one of {', '.join(r for r in rules.DIRECTION_RANGES if r != name)}")
    return indices[0], indices[-1] + 1


# ----------------------------------------------------------------------------- SeFa


def style_weights(model, layers: tuple[int, int]) -> np.ndarray:
    """The affine weights of the layers reading w indices [start, end), stacked: float64 [rows, w_dim]."""
    start, end = layers
    blocks = [layer["affine"].weight.detach().to("cpu").double().numpy()
              for layer in style_layers(model) if start <= layer["w_index"] < end]
    if not blocks:
        raise DirectionError(f"no style layers read w indices {start}..{end - 1}")
    return np.concatenate(blocks, axis=0)


def sefa(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [k, w_dim] unit directions, float64 [k] eigenvalues, largest first) from
    stacked style weights: the top eigenvectors of A^T A, A with unit-length rows."""
    a = np.asarray(weights, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    a = a / np.where(norms > 0, norms, 1.0)
    values, vectors = np.linalg.eigh(a.T @ a)  # ascending, columns are eigenvectors
    order = np.argsort(values)[::-1][:k]
    vecs = vectors[:, order].T
    # eigh's sign is arbitrary: make the largest-magnitude component positive, so the same
    # weights give the same directions everywhere (and a cached id never flips).
    signs = np.sign(vecs[np.arange(len(vecs)), np.argmax(np.abs(vecs), axis=1)])
    vecs = vecs * np.where(signs == 0, 1.0, signs)[:, None]
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs.astype(np.float32), values[order]


def compute_directions(model, range_name: str = "all", k: int = rules.DEFAULT_DIRECTIONS) -> list[Direction]:
    """The top-k SeFa directions of `model` (a Generator or ModelRunner) for one layer range."""
    try:
        k = rules.check_direction_count(k)
    except rules.RuleError as exc:
        raise DirectionError(str(exc)) from None
    layers = layer_range(model, range_name)
    w_dim = _generator(model).w_dim
    vecs, values = sefa(style_weights(model, layers), min(k, w_dim))
    return [Direction(id=f"{range_name}:{i}", range=range_name, index=i, layers=layers, vector=v,
                      eigenvalue=float(values[i])) for i, v in enumerate(vecs)]


def parse_direction_id(direction_id) -> tuple[str, int]:
    """"coarse:3" -> ("coarse", 3); DirectionError otherwise."""
    text = str(direction_id)
    name, _, rank = text.partition(":")
    if name not in rules.DIRECTION_RANGES or not rank.isdigit() or int(rank) >= rules.MAX_DIRECTIONS:
        raise DirectionError(f"unknown direction id {text!r}: write <range>:<rank>, range one of "
                             f"{', '.join(rules.DIRECTION_RANGES)}, rank 0 to {rules.MAX_DIRECTIONS - 1}")
    return name, int(rank)


def direction_by_id(model, direction_id) -> Direction:
    """The direction `direction_id` ("coarse:0") of `model`, as GET /models/{id}/directions lists it."""
    range_name, rank = parse_direction_id(direction_id)
    found = compute_directions(model, range_name, k=rank + 1)
    if rank >= len(found):
        raise DirectionError(f"this model has {len(found)} {range_name} directions; no {direction_id!r}")
    return found[rank]


def parse_direction_keys(spec: str) -> tuple[str, list[tuple[int, float]]]:
    """The CLI's --direction: "coarse:0=0:0,48:3,96:0" -> ("coarse:0", [(0, 0.0), (48, 3.0), (96, 0.0)])
    (the amount keyed on frames); "coarse:0=2.5" -> ("coarse:0", [(0, 2.5)]) (one amount throughout)."""
    text = str(spec)
    usage = "write ID=AMOUNT or ID=FRAME:AMOUNT,FRAME:AMOUNT,..., e.g. coarse:0=0:0,48:3,96:0"
    direction_id, sep, keys = text.partition("=")
    if not sep or not keys.strip():
        raise DirectionError(f"bad --direction {text!r}: {usage}")
    direction_id = direction_id.strip()
    parse_direction_id(direction_id)
    parts = [part.strip() for part in keys.split(",")]
    pairs = []
    for part in parts:
        frame, colon, amount = part.rpartition(":")
        if not colon and len(parts) > 1:
            raise DirectionError(f"bad key {part!r} in --direction {text!r}: with several keys each is "
                                 f"FRAME:AMOUNT; {usage}")
        try:
            pairs.append((int(frame) if colon else 0, float(amount)))
        except ValueError:
            raise DirectionError(f"bad key {part!r} in --direction {text!r}: {usage}") from None
        if pairs[-1][0] < 0:
            raise DirectionError(f"bad key {part!r} in --direction {text!r}: frames are 0 or more")
    frames = [f for f, _ in pairs]
    if len(set(frames)) != len(frames):
        raise DirectionError(f"--direction {text!r} keys frame {max(frames, key=frames.count)} twice")
    return direction_id, sorted(pairs)


def keyed_amounts(keys: Sequence[tuple[int, float]], frame_start: int, frame_end: int) -> np.ndarray:
    """One amount per frame of [frame_start, frame_end]: straight lines between the keys, the
    first and last key's amount held before and after them (as Blender's linear F-curves)."""
    frames = np.arange(frame_start, frame_end + 1, dtype=np.float64)
    key_frames = np.asarray([f for f, _ in keys], dtype=np.float64)
    key_amounts = np.asarray([a for _, a in keys], dtype=np.float64)
    return np.interp(frames, key_frames, key_amounts).astype(np.float32)


# ----------------------------------------------------------------------------- edits of W+ latents


@dataclass(frozen=True)
class WalkDirection:
    """One direction animated along a walk: `amounts[i]` is its amount on frame_start + i."""

    vector: np.ndarray  # [w_dim]
    layers: tuple[int, int]  # [start, end)
    amounts: np.ndarray  # float32 [frames]


def check_walk_directions(directions: Sequence[WalkDirection], frame_start: int, frame_end: int,
                          num_ws: int, w_dim: int) -> list[WalkDirection]:
    """The walk's direction edits, checked against the model and the frame range."""
    frames = frame_end - frame_start + 1
    if len(directions) > rules.MAX_WALK_DIRECTIONS:
        raise DirectionError(f"at most {rules.MAX_WALK_DIRECTIONS} directions per walk, got {len(directions)}")
    out = []
    for i, d in enumerate(directions):
        where = f"directions[{i}]"
        vector = np.asarray(d.vector, dtype=np.float32)
        if vector.shape != (w_dim,) or not np.all(np.isfinite(vector)):
            raise DirectionError(f"{where}: the vector must be {w_dim} finite numbers for this model, "
                                 f"got shape {list(vector.shape)}")
        start, end = (int(x) for x in d.layers)
        if not 0 <= start < end <= num_ws:
            raise DirectionError(f"{where}: layers [{start}, {end}) must lie within [0, {num_ws}) "
                                 "with start < end")
        try:
            amounts = rules.check_direction_amounts(list(np.asarray(d.amounts, dtype=np.float64).ravel()),
                                                    f"{where}.amounts")
        except rules.RuleError as exc:
            raise DirectionError(str(exc)) from None
        if len(amounts) != frames:
            raise DirectionError(f"{where}.amounts has {len(amounts)} numbers; the walk has {frames} frames "
                                 f"({frame_start}-{frame_end}): give one per frame")
        out.append(WalkDirection(vector, (start, end), np.asarray(amounts, dtype=np.float32)))
    return out


def offset_ws(ws: np.ndarray, frames: Sequence[int], frame_start: int,
              directions: Sequence[WalkDirection]) -> np.ndarray:
    """ws [N, num_ws, w_dim] of `frames` plus each direction's amount on that frame, on its layers."""
    out = np.array(ws, dtype=np.float32, copy=True)
    rows = np.asarray(frames, dtype=np.int64) - frame_start
    for d in directions:
        start, end = d.layers
        out[:, start:end, :] += (d.amounts[rows][:, None, None] * d.vector[None, None, :]).astype(np.float32)
    return out


def preview_ws(base_ws: np.ndarray, direction: Direction, amount: float,
               steps: int = rules.PREVIEW_STEPS) -> np.ndarray:
    """A strip's latents: base_ws [num_ws, w_dim] moved by linspace(-amount, +amount, steps)
    along `direction` on its layers -> [steps, num_ws, w_dim] (the middle one is the base)."""
    amounts = np.linspace(-amount, amount, steps, dtype=np.float32)
    ws = np.repeat(np.asarray(base_ws, dtype=np.float32)[None], steps, axis=0)
    start, end = direction.layers
    ws[:, start:end, :] += amounts[:, None, None] * direction.vector[None, None, :]
    return ws
