"""Latent-space tools, pure numpy: seeds -> z, truncation, interpolation, easing, keyed walks,
style mixing. No torch here, so the server and CLI can validate user input cheaply.

Seed convention = the reference generate.py: z = RandomState(seed).randn(1, z_dim), so the
same seed gives the same image as the public tools.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from gan_core import rules


class LatentError(ValueError):
    """User input about seeds, keys, frames or latents that cannot be used."""


# ----------------------------------------------------------------------------- seeds


def _parse_seed(token: str, text: str) -> int:
    token = token.strip()
    if token.startswith("-"):
        raise LatentError(f"seeds must be non-negative, got {token!r} in {text!r}")
    if not token.isdigit():
        raise LatentError(f"not a seed number: {token!r} in {text!r} (use e.g. 0-9,12)")
    seed = int(token)
    if seed > rules.MAX_SEED:
        raise LatentError(f"seed {seed} is too large: seeds go from 0 to {rules.MAX_SEED}")
    return seed


def validate_seed(seed) -> int:
    """An int seed in [0, 2**32-1] (bools and floats with fractions are refused)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise LatentError(f"a seed must be a whole number, got {seed!r}")
    seed = int(seed)
    if seed < 0 or seed > rules.MAX_SEED:
        raise LatentError(f"seed {seed} is out of range: seeds go from 0 to {rules.MAX_SEED}")
    return seed


def parse_seeds(spec, max_count: int = rules.MAX_SEEDS_PER_LIST) -> list[int]:
    """"0-9,12" -> [0, ..., 9, 12]. Also accepts an int or a list of ints. Order is kept."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return [validate_seed(spec)]
    if isinstance(spec, (list, tuple)):
        seeds = [validate_seed(s) for s in spec]
    elif isinstance(spec, str):
        seeds = []
        if not spec.strip():
            raise LatentError("no seeds given (use e.g. 0-9,12)")
        for part in spec.split(","):
            if not part.strip():
                raise LatentError(f"empty item in seed list {spec!r}")
            match = re.fullmatch(r"\s*(\S+?)\s*-\s*(\S+)\s*", part)
            if match and not part.strip().startswith("-"):
                lo, hi = _parse_seed(match.group(1), spec), _parse_seed(match.group(2), spec)
                if hi < lo:
                    raise LatentError(f"seed range {part.strip()!r} runs backwards (write {hi}-{lo})")
                if hi - lo + 1 + len(seeds) > max_count:
                    raise LatentError(f"too many seeds: at most {max_count} per request")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(_parse_seed(part, spec))
    else:
        raise LatentError(f"seeds must be text like '0-9,12' or a list of numbers, got {type(spec).__name__}")
    if not seeds:
        raise LatentError("no seeds given (use e.g. 0-9,12)")
    if len(seeds) > max_count:
        raise LatentError(f"too many seeds: at most {max_count} per request")
    return seeds


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    return np.random.RandomState(validate_seed(seed)).randn(1, z_dim)[0].astype(np.float32)


def seeds_to_z(seeds: Iterable[int], z_dim: int) -> np.ndarray:
    """float32 [N, z_dim], one row per seed, by the reference's convention."""
    rows = [seed_to_z(s, z_dim) for s in seeds]
    if not rows:
        raise LatentError("no seeds given")
    return np.stack(rows)


# ----------------------------------------------------------------------------- truncation / mixing


def truncate(ws: np.ndarray, w_avg: np.ndarray, psi: float, cutoff: int | None = None) -> np.ndarray:
    """w_avg + psi * (w - w_avg) on ws [..., num_ws, w_dim]; only layers < cutoff if given."""
    ws = np.array(ws, dtype=np.float32, copy=True)
    w_avg = np.asarray(w_avg, dtype=np.float32)
    sel = slice(None) if cutoff is None else slice(0, cutoff)
    ws[..., sel, :] = w_avg + psi * (ws[..., sel, :] - w_avg)
    return ws


def style_mix(ws_base: np.ndarray, ws_style: np.ndarray, layers) -> np.ndarray:
    """Copy of ws_base whose `layers` come from ws_style (both [..., num_ws, w_dim]).

    `layers` is an int L (layers L..end: coarse structure of the base, finer styles of the
    other) or an iterable of layer indices, as the reference's style-mixing tool takes.
    """
    base = np.array(ws_base, dtype=np.float32, copy=True)
    style = np.asarray(ws_style, dtype=np.float32)
    if base.shape[-2:] != style.shape[-2:]:
        raise LatentError(f"cannot mix ws of shapes {base.shape} and {style.shape}")
    num_ws = base.shape[-2]
    if isinstance(layers, (int, np.integer)):
        if not 0 <= layers <= num_ws:
            raise LatentError(f"mixing layer {layers} out of range 0..{num_ws}")
        idx = list(range(int(layers), num_ws))
    else:
        idx = [int(i) for i in layers]
        bad = [i for i in idx if not 0 <= i < num_ws]
        if bad:
            raise LatentError(f"mixing layer(s) {bad} out of range 0..{num_ws - 1}")
    base[..., idx, :] = np.broadcast_to(style, base.shape)[..., idx, :]
    return base


# ----------------------------------------------------------------------------- interpolation


def lerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return (a + (b - a) * np.float32(t)).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation along the last axis (suits gaussian z: stays near the shell
    where z lives, unlike lerp, which cuts through the low-norm middle)."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a64, axis=-1, keepdims=True)
    nb = np.linalg.norm(b64, axis=-1, keepdims=True)
    cos = np.sum(a64 * b64, axis=-1, keepdims=True) / np.maximum(na * nb, eps)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    sin = np.sin(omega)
    t = float(t)
    near = sin < 1e-6  # (anti)parallel: the arc is undefined or degenerate, use a straight line
    safe = np.where(near, 1.0, sin)
    wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    wb = np.where(near, t, np.sin(t * omega) / safe)
    return (wa * a64 + wb * b64).astype(np.float32)


INTERPOLATIONS: dict[str, Callable] = {"slerp": slerp, "lerp": lerp}
assert tuple(INTERPOLATIONS) == rules.INTERPOLATIONS  # the rulebook lists the names


def _smooth(t):
    return t * t * (3 - 2 * t)


def _smoother(t):
    return t * t * t * (t * (6 * t - 15) + 10)


def _ease_in_out(t):
    return 4 * t ** 3 if t < 0.5 else 1 - (-2 * t + 2) ** 3 / 2


EASINGS: dict[str, Callable[[float], float]] = {
    "linear": lambda t: t,
    "smooth": _smooth,  # smoothstep: zero speed at each key
    "smoother": _smoother,  # smootherstep: zero speed and acceleration at each key
    "ease-in": lambda t: t * t,
    "ease-out": lambda t: 1 - (1 - t) * (1 - t),
    "ease-in-out": _ease_in_out,
    "sine": lambda t: 0.5 - 0.5 * math.cos(math.pi * t),
}
assert tuple(EASINGS) == rules.EASINGS


def get_easing(name: str) -> Callable[[float], float]:
    key = str(name).strip().lower().replace("_", "-")
    if key not in EASINGS:
        raise LatentError(f"unknown easing {name!r}: use one of {', '.join(EASINGS)}")
    return EASINGS[key]


def get_interpolation(name: str) -> Callable:
    key = str(name).strip().lower()
    if key not in INTERPOLATIONS:
        raise LatentError(f"unknown interpolation {name!r}: use slerp or lerp")
    return INTERPOLATIONS[key]


# ----------------------------------------------------------------------------- waypoints and walks


def _check_latent(where: str, seed, z, w, what: str = "a seed or a vector (z or w)") -> tuple:
    """(seed, z, w) with exactly one given and well-formed; arrays as float32."""
    if sum(v is not None for v in (seed, z, w)) != 1:
        raise LatentError(f"{where} needs exactly one of {what}")
    if seed is not None:
        return validate_seed(seed), None, None
    if z is not None:
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 1 or z.size == 0 or not np.all(np.isfinite(z)):
            raise LatentError(f"{where}: the vector must be 1-D and finite")
        return None, z, None
    w = np.asarray(w, dtype=np.float32)
    if w.ndim not in (1, 2) or w.size == 0 or not np.all(np.isfinite(w)):
        raise LatentError(f"{where}: w must be finite numbers, [w_dim] (one w for every layer) "
                          f"or [num_ws][w_dim] (one per layer)")
    return None, None, w


@dataclass(frozen=True)
class Mix:
    """Style mixing of a walk key: its layers >= `from_layer` (the finer styles) come from this
    other latent, a seed, a z vector or a w / W+ latent (gan_core.latent.style_mix's rule)."""

    from_layer: int
    seed: int | None = None
    z: np.ndarray | None = None
    w: np.ndarray | None = None

    def __post_init__(self):
        layer = self.from_layer
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or layer < 0:
            raise LatentError(f"mix.from_layer must be a whole number >= 0, got {layer!r}")
        seed, z, w = _check_latent("mix", self.seed, self.z, self.w, "a seed, z or w")
        object.__setattr__(self, "from_layer", int(layer))
        object.__setattr__(self, "seed", seed)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "w", w)


@dataclass(frozen=True)
class Waypoint:
    """A key of a walk: at `frame`, the latent of `seed`, the explicit vector `z`, or a stored
    W / W+ latent `w` ([w_dim] or [num_ws, w_dim], e.g. from projection); optionally style-mixed
    with another latent (`mix`). Keys with `w` or `mix` make the walk run in W+ (walk_ws)."""

    frame: int
    seed: int | None = None
    z: np.ndarray | None = None
    w: np.ndarray | None = None
    mix: Mix | None = None

    def __post_init__(self):
        if isinstance(self.frame, bool) or not isinstance(self.frame, (int, np.integer)) or self.frame < 0:
            raise LatentError(f"a key frame must be a whole number >= 0, got {self.frame!r}")
        seed, z, w = _check_latent(f"key at frame {self.frame}", self.seed, self.z, self.w)
        if seed is not None:
            object.__setattr__(self, "seed", seed)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "w", w)
        if self.mix is not None and not isinstance(self.mix, Mix):
            raise LatentError(f"key at frame {self.frame}: mix must be a Mix")

    @property
    def in_w(self) -> bool:
        """True when this key can only be rendered in W+ (a stored w, or style mixing)."""
        return self.w is not None or self.mix is not None

    def vector(self, dim: int) -> np.ndarray:
        if self.w is not None:
            raise LatentError(f"key at frame {self.frame} holds a w latent, not a z vector")
        if self.seed is not None:
            return seed_to_z(self.seed, dim)
        if self.z.shape[0] != dim:
            raise LatentError(f"key at frame {self.frame}: vector has {self.z.shape[0]} values, the model wants {dim}")
        return self.z

    def to_dict(self) -> dict:
        """JSON-ready: {frame, seed | z | w, mix?}; plain keys look as they always did."""
        out = {"frame": int(self.frame), **_latent_dict(self.seed, self.z, self.w)}
        if self.mix is not None:
            out["mix"] = {**_latent_dict(self.mix.seed, self.mix.z, self.mix.w), "from_layer": self.mix.from_layer}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Waypoint":
        """The inverse of to_dict (stored walks are rebuilt from it, so a resumed walk is the same)."""
        mix = data.get("mix")
        if mix is not None:
            mix = Mix(from_layer=mix.get("from_layer"), seed=mix.get("seed"), z=mix.get("z"), w=mix.get("w"))
        return cls(frame=data.get("frame"), seed=data.get("seed"), z=data.get("z"), w=data.get("w"), mix=mix)


def _latent_dict(seed, z, w) -> dict:
    if seed is not None:
        return {"seed": int(seed)}
    return {"z": z.tolist()} if z is not None else {"w": w.tolist()}


def parse_keys(spec: str) -> list[Waypoint]:
    """"0:seed=1,48:seed=7,96:seed=1" -> waypoints sorted by frame ("48:7" works too)."""
    if not isinstance(spec, str) or not spec.strip():
        raise LatentError("no keys given (use e.g. 0:seed=1,48:seed=7)")
    keys = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(?:seed\s*=\s*)?(\d+)\s*", part)
        if not match:
            raise LatentError(f"bad key {part.strip()!r}: write FRAME:seed=SEED, e.g. 48:seed=7")
        seed = int(match.group(2))
        if seed > rules.MAX_SEED:
            raise LatentError(f"seed {seed} is too large: seeds go from 0 to {rules.MAX_SEED}")
        keys.append(Waypoint(frame=int(match.group(1)), seed=seed))
    return sort_waypoints(keys)


def sort_waypoints(waypoints: Sequence[Waypoint]) -> list[Waypoint]:
    keys = sorted(waypoints, key=lambda w: w.frame)
    if not keys:
        raise LatentError("a walk needs at least one key")
    frames = [w.frame for w in keys]
    dupes = sorted({f for f in frames if frames.count(f) > 1})
    if dupes:
        raise LatentError(f"two keys on the same frame: {dupes}")
    return keys


def parse_frame_range(spec: str) -> tuple[int, int]:
    """"1-250" -> (1, 250); "7" -> (7, 7)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(spec))
    if not match:
        raise LatentError(f"bad frame range {spec!r}: write START-END, e.g. 0-95")
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) is not None else start
    if end < start:
        raise LatentError(f"frame range {spec!r} ends before it starts")
    return start, end


def validate_walk(waypoints: Sequence[Waypoint], frame_start: int, frame_end: int, loop: bool) -> list[Waypoint]:
    keys = sort_waypoints(waypoints)
    if frame_start < 0 or frame_end < frame_start:
        raise LatentError(f"bad frame range {frame_start}-{frame_end}: need 0 <= start <= end")
    if loop:
        outside = [w.frame for w in keys if not frame_start <= w.frame <= frame_end]
        if outside:
            raise LatentError(f"a looping walk needs all keys inside frames {frame_start}-{frame_end}; "
                              f"keys at {outside} are not")
    return keys


def _same_array(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


def same_latent(a: Waypoint, b: Waypoint) -> bool:
    if a.mix is not None or b.mix is not None:
        if a.mix is None or b.mix is None or a.mix.from_layer != b.mix.from_layer:
            return False
        if not (a.mix.seed == b.mix.seed and _same_array(a.mix.z, b.mix.z) and _same_array(a.mix.w, b.mix.w)):
            return False
    if a.seed is not None or b.seed is not None:
        return a.seed == b.seed
    return _same_array(a.z, b.z) and _same_array(a.w, b.w)


def loop_keys_and_range(waypoints: Sequence[Waypoint]) -> tuple[list[Waypoint], int, int]:
    """Keys and frame range of a loop given by its keys alone ("0:seed=1,...,96:seed=1").

    A last key that repeats the first is where the loop closes, not a frame to render:
    the range ends one frame before it, so the sequence's last frame flows into its first
    without showing the same image twice. Otherwise the loop turns back after the last key.
    """
    keys = sort_waypoints(waypoints)
    if len(keys) > 2 and same_latent(keys[0], keys[-1]):
        return keys[:-1], keys[0].frame, keys[-1].frame - 1
    return keys, keys[0].frame, keys[-1].frame


def walk_latents(waypoints: Sequence[Waypoint], z_dim: int, frame_start: int, frame_end: int,
                 interp: str = "slerp", easing: str = "linear", loop: bool = False, space: str = "z",
                 resolve: Callable[[Waypoint], np.ndarray] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame, float32 vector) for every frame in [frame_start, frame_end], one at a time.

    Between keys the vector is interp(key_a, key_b, easing(t)). Without `loop`, frames
    before the first / after the last key hold that key. With `loop`, the walk is periodic
    over the frame range: after the last key it heads back to the first key, which it would
    reach on frame_end + 1, so frame_end flows into frame_start without a jump.
    `space` names what the vectors are ('z' or 'w'); seeds become z vectors, so a w-space
    walk needs `resolve` (waypoint -> w vector of length z_dim), e.g. a mapping network.
    """
    if space not in ("z", "w"):
        raise LatentError(f"unknown latent space {space!r}: use z or w")
    interp_fn = get_interpolation(interp)
    ease = get_easing(easing)
    keys = validate_walk(waypoints, frame_start, frame_end, loop)
    if space == "w" and resolve is None and any(k.seed is not None for k in keys):
        raise LatentError("a w-space walk from seeds needs the model to map seeds to w")
    to_vec = resolve or (lambda k: k.vector(z_dim))
    vectors = [np.asarray(to_vec(k), dtype=np.float32) for k in keys]
    frames = [k.frame for k in keys]
    if loop:
        period = frame_end - frame_start + 1
        frames.append(frames[0] + period)
        vectors.append(vectors[0])
    return _walk(frames, vectors, frame_start, frame_end, interp_fn, ease, loop)


def _walk(frames, vectors, frame_start, frame_end, interp_fn, ease, loop):
    first = frames[0]
    period = frame_end - frame_start + 1
    seg = 0
    for frame in range(frame_start, frame_end + 1):
        pos = first + (frame - first) % period if loop else frame
        if pos <= frames[0]:
            yield frame, vectors[0].copy()
            continue
        if pos >= frames[-1]:
            yield frame, vectors[-1].copy()
            continue
        seg = 0
        while frames[seg + 1] <= pos:
            seg += 1
        t = (pos - frames[seg]) / (frames[seg + 1] - frames[seg])
        yield frame, interp_fn(vectors[seg], vectors[seg + 1], ease(t))


# ----------------------------------------------------------------------------- W+ walks (stored w, style mixing)


def ws_count(resolution: int) -> int:
    """How many ws a StyleGAN2 generator of this resolution takes (Generator.num_ws): two
    per block from 8 px up, one for the 4 px block and one for the last toRGB. Lets the
    server check a key's W+ shape from a checkpoint's header, without loading it."""
    if not rules.is_power_of_two(resolution) or resolution < 4:
        raise LatentError(f"resolution must be a power of two >= 4, got {resolution!r}")
    return 2 * int(resolution).bit_length() - 4  # 2 * log2(resolution) - 2


def _latent_ws(where: str, seed, z, w, num_ws: int, w_dim: int, z_dim: int,
               map_z: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
    """One latent (seed, z or w) as ws float32 [num_ws, w_dim]; seeds and z go through `map_z`
    (z [z_dim] -> ws [num_ws, w_dim], with the walk's truncation), w is used as given."""
    if w is not None:
        if w.shape == (w_dim,):
            return np.repeat(w[None], num_ws, axis=0)
        if w.shape == (num_ws, w_dim):
            return w.copy()
        raise LatentError(f"{where}: w has shape {list(w.shape)}, this model wants [{w_dim}] or [{num_ws}, {w_dim}]")
    z = seed_to_z(seed, z_dim) if seed is not None else z
    if z.shape != (z_dim,):
        raise LatentError(f"{where}: vector has {z.shape[0]} values, the model wants {z_dim}")
    if map_z is None:  # shape checks only
        return np.zeros((num_ws, w_dim), np.float32)
    ws = np.asarray(map_z(z), dtype=np.float32)
    if ws.shape != (num_ws, w_dim):
        raise LatentError(f"map_z gave ws of shape {list(ws.shape)}, expected [{num_ws}, {w_dim}]")
    return ws


def key_ws(key: Waypoint, num_ws: int, w_dim: int, z_dim: int,
           map_z: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """A walk key as ws float32 [num_ws, w_dim]: its own latent, then, with a `mix`, layers
    >= mix.from_layer replaced by the other latent's (style_mix). Without `map_z` only the
    shapes are checked (what a server does before it queues the walk)."""
    where = f"key at frame {key.frame}"
    ws = _latent_ws(where, key.seed, key.z, key.w, num_ws, w_dim, z_dim, map_z)
    if key.mix is None:
        return ws
    if key.mix.from_layer > num_ws:
        raise LatentError(f"{where}: mix.from_layer {key.mix.from_layer} is out of range: this model has "
                          f"{num_ws} layers, so 0 (all from the other latent) to {num_ws} (none)")
    other = _latent_ws(f"{where}, mix", key.mix.seed, key.mix.z, key.mix.w, num_ws, w_dim, z_dim, map_z)
    return style_mix(ws, other, key.mix.from_layer)


def walk_ws(waypoints: Sequence[Waypoint], frame_start: int, frame_end: int, *, num_ws: int, w_dim: int,
            z_dim: int, map_z: Callable[[np.ndarray], np.ndarray], easing: str = "linear",
            loop: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame, ws float32 [num_ws, w_dim]) for a walk in W+: every key resolved by
    `key_ws`, then each layer interpolated on its own.

    Always a straight line (lerp) in W, whatever the walk's interpolation: slerp keeps a
    gaussian z on its shell, but W is not gaussian and its keys have arbitrary norms, so an
    arc there has no meaning (and would swing through other images); lerp in W is what the
    StyleGAN papers use for smooth walks. Easing and looping work as in walk_latents.
    """
    def resolve(key: Waypoint) -> np.ndarray:
        return key_ws(key, num_ws, w_dim, z_dim, map_z)

    return walk_latents(waypoints, w_dim, frame_start, frame_end, interp="lerp", easing=easing, loop=loop,
                        space="w", resolve=resolve)
