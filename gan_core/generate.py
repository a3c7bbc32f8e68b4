"""Image generation from a trained network: seeds or z -> uint8 images, latent walks -> frames.

`ModelRunner` loads a checkpoint once and serves many requests (server, CLI). It validates
every user-facing argument itself, so bad input raises `GenerateError` (a ValueError) with
a readable message instead of a torch traceback. Walk frames are rendered in batches and
streamed: at most `batch_size` frames are in memory at any time.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Container, Iterator, Sequence

import numpy as np
import torch

from gan_core import rules
from gan_core.device import resolve_device
from gan_core.directions import WalkDirection, check_walk_directions, offset_ws
from gan_core.latent import Waypoint, parse_seeds, seeds_to_z, walk_latents, walk_ws
from gan_core.models.checkpoint import network_is_tileable
from gan_core.texture_field import layout_field, layout_offsets


class GenerateError(ValueError):
    """A generation request that cannot be served as asked; the message says why."""


def validate_psi(psi) -> float:
    try:
        return rules.check_psi(psi)
    except rules.RuleError as exc:
        raise GenerateError(str(exc)) from None


def validate_noise_mode(noise_mode) -> str:
    try:
        return rules.check_noise_mode(noise_mode)
    except rules.RuleError as exc:
        raise GenerateError(str(exc)) from None


def validate_size_multiplier(size_multiplier) -> int:
    try:
        return rules.check_size_multiplier(size_multiplier)
    except rules.RuleError as exc:
        raise GenerateError(str(exc)) from None


def _validate_batch(batch_size) -> int:
    try:
        return rules.check_int(batch_size, "batch size", 1, rules.MAX_GENERATE_BATCH)
    except rules.RuleError as exc:
        raise GenerateError(str(exc)) from None


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in ~[-1, 1] -> uint8 [N, H, W, 3] (grey images repeated to RGB)."""
    img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    if img.shape[-1] == 1:
        img = img.repeat(1, 1, 1, 3)
    return img.cpu().numpy()


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise GenerateError(f"PNG encoding wants uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def image_grid(images: np.ndarray, cols: int) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 image with `cols` columns (row-major, black padding)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise GenerateError(f"image_grid wants a non-empty [N, H, W, C] array, got shape {list(images.shape)}")
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise GenerateError(f"grid columns must be a whole number >= 1, got {cols!r}")
    n, h, w, c = images.shape
    cols = min(cols, n)
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), dtype=images.dtype)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
    return grid


class ModelRunner:
    """One generator on one device, loaded once, answering generate / walk requests."""

    def __init__(self, path_or_networks, device="auto", precision: str = "auto"):
        from gan_core.models.checkpoint import load_network
        from gan_core.nn.networks import set_precision

        self.device = resolve_device(device)
        try:  # checked before the (possibly large) checkpoint is read
            self.precision = rules.check_precision(precision, self.device.type)
        except rules.RuleError as exc:
            raise GenerateError(str(exc)) from None
        if isinstance(path_or_networks, (str, Path)):
            loaded = load_network(path_or_networks, device=self.device, parts=("G_ema",))
            self.G, self.config = loaded["G_ema"], loaded["config"]
        elif isinstance(path_or_networks, dict) and "G_ema" in path_or_networks:
            self.G, self.config = path_or_networks["G_ema"], path_or_networks.get("config", {})
        elif isinstance(path_or_networks, torch.nn.Module):
            self.G, self.config = path_or_networks, {}
        else:
            raise GenerateError("ModelRunner wants a checkpoint path, a Generator or a dict with 'G_ema'")
        self.G = set_precision(self.G.to(self.device).eval(), self.precision)
        self.z_dim, self.c_dim, self.w_dim = self.G.z_dim, self.G.c_dim, self.G.w_dim
        self.resolution, self.num_ws = self.G.img_resolution, self.G.num_ws
        # Trained in seamless mode (TrainingConfig.tileable): what seamless=None means.
        self.tileable = network_is_tileable(self.config)
        self._layout_offsets: dict = {}  # size multiplier -> per-tile layout offsets (fixed, cached)

    # -- inputs

    def _labels(self, n: int, class_idx) -> torch.Tensor:
        c = torch.zeros([n, self.c_dim], device=self.device)
        if self.c_dim == 0:
            if class_idx is not None:
                raise GenerateError("this model is not class-conditional: leave the class out")
            return c
        if isinstance(class_idx, bool) or not isinstance(class_idx, int) or not 0 <= class_idx < self.c_dim:
            raise GenerateError(f"this model is class-conditional: give a class from 0 to {self.c_dim - 1}")
        c[:, class_idx] = 1
        return c

    def _z_batch(self, seeds, z) -> np.ndarray:
        if (seeds is None) == (z is None):
            raise GenerateError("give either seeds or z vectors")
        if seeds is not None:
            return seeds_to_z(parse_seeds(seeds), self.z_dim)
        z = np.asarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.z_dim or z.shape[0] == 0:
            raise GenerateError(f"z must have shape [N, {self.z_dim}] for this model, got {list(z.shape)}")
        if not np.all(np.isfinite(z)):
            raise GenerateError("z contains NaN or infinite values")
        return z

    # -- generation

    def texture_mode(self, seamless=None, size_multiplier=1) -> tuple[bool, int]:
        """(seamless, size_multiplier) as rendered. seamless None: the model's `tileable` flag.
        A size multiplier above 1 needs seamless mode (the enlarged const input is a tiling
        that only wrap-around padding joins up): None then means seamless, False is refused."""
        size_multiplier = validate_size_multiplier(size_multiplier)
        if seamless is not None and not isinstance(seamless, bool):
            raise GenerateError(f"seamless must be true, false or left out (the model's default), got {seamless!r}")
        if size_multiplier > 1:
            if seamless is False:
                raise GenerateError(f"size multiplier {size_multiplier} needs seamless mode: turn seamless on "
                                    "(or leave it out), or use size multiplier 1")
            return True, size_multiplier
        return (self.tileable if seamless is None else seamless), 1

    def output_side(self, size_multiplier: int = 1) -> int:
        return self.resolution * size_multiplier

    @torch.no_grad()
    def _synthesize_z(self, z: np.ndarray, c: torch.Tensor, psi: float, noise_mode: str, seamless: bool = False,
                      size_multiplier: int = 1) -> np.ndarray:
        zt = torch.from_numpy(np.ascontiguousarray(z)).to(self.device)
        return self._render(self._map(zt, c, psi), noise_mode, seamless=seamless,
                            size_multiplier=size_multiplier)

    @torch.no_grad()
    def _synthesize_w(self, w: np.ndarray, noise_mode: str, seamless: bool = False,
                      size_multiplier: int = 1) -> np.ndarray:
        ws = torch.from_numpy(np.ascontiguousarray(w)).to(self.device).unsqueeze(1).repeat(1, self.num_ws, 1)
        return self._render(ws, noise_mode, seamless=seamless, size_multiplier=size_multiplier)

    @torch.no_grad()
    def _map(self, zt: torch.Tensor, c: torch.Tensor, psi: float) -> torch.Tensor:
        """z [N, z_dim] -> (truncated) ws [N, num_ws, w_dim], batched. (Batched float kernels may
        round a row's last bits differently with other rows beside it; the explorer, which
        promises bit-exact picks, maps one z at a time: gan_core.explore.)"""
        return self.G.mapping(zt, c[: len(zt)], truncation_psi=psi)

    def _render(self, ws: torch.Tensor, noise_mode: str, seamless: bool = False,
                size_multiplier: int = 1) -> np.ndarray:
        """The one place every image is synthesized: ws [N, num_ws, w_dim] -> uint8 [N, H, W, 3]
        (H = W = resolution * size_multiplier). Callers pass a resolved texture_mode().

        Memory: an enlarged image costs size_multiplier^2 times a plain one, so enlarged
        batches are split into passes of max(1, N // size_multiplier^2) images: a pass holds
        about the pixels of the caller's plain batch, and never more than one enlarged image
        beyond that. Within an image, blocks wider than 512 px run in 512 px tiles and the
        last block's feature maps never exist whole (SynthesisNetwork._tiled_block): 1.9 GB
        peak for 1024 px from a 256 px stylegan2 model on the CPU (benchmarks/bench_texture.py).
        Enlarged images get a layout latent per tile (gan_core.texture_field), so the layout
        does not repeat every training-resolution period."""
        if size_multiplier == 1:
            return self._cut_tile(self.G.synthesis(ws, noise_mode=noise_mode, seamless=seamless), seamless)
        offsets = self._layout_offsets.get(size_multiplier)
        if offsets is None:
            offsets = self._layout_offsets[size_multiplier] = layout_offsets(self.G, size_multiplier)
        per_pass = max(1, len(ws) // size_multiplier ** 2)
        return np.concatenate([
            self._cut_tile(self.G.synthesis(ws[i:i + per_pass], noise_mode=noise_mode, seamless=True,
                                            size_multiplier=size_multiplier,
                                            style_field=layout_field(self.G, ws[i:i + per_pass], size_multiplier,
                                                                     offsets)), True)
            for i in range(0, len(ws), per_pass)])

    def _cut_tile(self, img: torch.Tensor, seamless: bool) -> np.ndarray:
        """A seamless image is periodic, so where its tile is cut is ours to choose. Cut it in
        the middle of a cell of the 4x4 constant input (roll by half a cell), not on the cell
        borders: StyleGAN2's upsampling leaves faint lines there, and a tile edge on one of them
        would read as a seam (gan_core.texture.seam_score) though the tiling is identical."""
        if seamless:
            half_cell = max(1, self.resolution // 8)
            img = torch.roll(img, shifts=(half_cell, half_cell), dims=(2, 3))
        return to_uint8(img)

    @torch.no_grad()
    def map_z(self, z, psi: float = 1.0, class_idx=None) -> np.ndarray:
        """z [N, z_dim] -> (truncated) ws float32 [N, num_ws, w_dim]: the latents that tools
        which work in W (explorer, directions, projection, mixing) start from."""
        psi = validate_psi(psi)
        zs = self._z_batch(None, z)
        zt = torch.from_numpy(np.ascontiguousarray(zs)).to(self.device)
        return self._map(zt, self._labels(len(zs), class_idx), psi).float().cpu().numpy()

    @torch.no_grad()
    def synthesize_ws(self, ws, noise_mode: str = "const", batch_size: int = 16, seamless: bool | None = None,
                      size_multiplier: int = 1) -> np.ndarray:
        """ws [N, num_ws, w_dim] (or [N, w_dim], broadcast to every layer) -> uint8 [N, H, W, 3]."""
        noise_mode, batch_size = validate_noise_mode(noise_mode), _validate_batch(batch_size)
        seamless, size_multiplier = self.texture_mode(seamless, size_multiplier)
        ws = np.asarray(ws, dtype=np.float32)
        if ws.ndim == 2:
            ws = np.repeat(ws[:, None, :], self.num_ws, axis=1)
        if ws.ndim != 3 or ws.shape[0] == 0 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise GenerateError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}] or [N, {self.w_dim}] "
                                f"for this model, got {list(ws.shape)}")
        if not np.all(np.isfinite(ws)):
            raise GenerateError("ws contains NaN or infinite values")
        parts = []
        for i in range(0, len(ws), batch_size):
            wt = torch.from_numpy(np.ascontiguousarray(ws[i:i + batch_size])).to(self.device)
            parts.append(self._render(wt, noise_mode, seamless=seamless, size_multiplier=size_multiplier))
        return np.concatenate(parts)

    def generate(self, seeds=None, z=None, psi: float = 1.0, noise_mode: str = "const", class_idx=None,
                 batch_size: int = 16, seamless: bool | None = None, size_multiplier: int = 1) -> np.ndarray:
        """uint8 [N, H, W, 3], one image per seed (or z row), in order; H = W = resolution *
        size_multiplier. seamless None: the model's `tileable` flag (see texture_mode)."""
        psi, noise_mode = validate_psi(psi), validate_noise_mode(noise_mode)
        batch_size = _validate_batch(batch_size)
        seamless, size_multiplier = self.texture_mode(seamless, size_multiplier)
        zs = self._z_batch(seeds, z)
        c = self._labels(min(batch_size, len(zs)), class_idx)
        side = self.output_side(size_multiplier)
        out = np.empty((len(zs), side, side, 3), dtype=np.uint8)
        for i in range(0, len(zs), batch_size):
            out[i:i + batch_size] = self._synthesize_z(zs[i:i + batch_size], c, psi, noise_mode, seamless=seamless,
                                                       size_multiplier=size_multiplier)
        return out

    @torch.no_grad()
    def seed_to_w(self, waypoint: Waypoint, psi: float, class_idx=None) -> np.ndarray:
        """The (truncated) w vector of a walk key: for walks in w space."""
        zt = torch.from_numpy(waypoint.vector(self.z_dim)[None]).to(self.device)
        ws = self.G.mapping(zt, self._labels(1, class_idx), truncation_psi=psi)
        return ws[0, 0].cpu().numpy()

    def render_walk(self, waypoints: Sequence[Waypoint], frame_start: int, frame_end: int, interp: str = "slerp",
                    easing: str = "linear", loop: bool = False, psi: float = 1.0, noise_mode: str = "const",
                    batch_size: int = 8, class_idx=None, space: str | None = None,
                    skip_frames: Container[int] = (), seamless: bool | None = None,
                    size_multiplier: int = 1,
                    directions: Sequence[WalkDirection] = ()) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame, uint8 [H, W, 3]) for each frame in order, computing `batch_size` at a time.

        Frames in `skip_frames` are neither synthesized nor yielded (a resumed walk that has
        them on disk already); every other frame is exactly what a full render would give,
        since each frame's latent depends only on the waypoints and the frame range.

        `space` None means z for slerp (z is gaussian: stay on its shell) and w for lerp (w
        space is where straight lines look smooth). Every argument is checked here, before
        the first frame is rendered.

        `directions` (gan_core.directions.WalkDirection, one amount per frame of the range)
        move each frame's latent in W+ on their layers, after truncation: psi acts on the
        keys, never on the offsets. All amounts zero gives the plain walk (up to float rounding).

        Keys with a stored `w` or a style `mix` (gan_core.latent.Waypoint) make the whole walk
        run in W+: every key becomes ws [num_ws, w_dim] (seeds and z through the mapping with
        psi; w as stored, psi not applied; the mix by style_mix) and each layer is
        interpolated in a straight line (latent.walk_ws: 'slerp' means lerp there).
        """
        psi, noise_mode = validate_psi(psi), validate_noise_mode(noise_mode)
        batch_size = _validate_batch(batch_size)
        texture = self.texture_mode(seamless, size_multiplier)
        offsets = None
        if directions:
            edits = check_walk_directions(directions, frame_start, frame_end, self.num_ws, self.w_dim)
            offsets = lambda ws, frames: offset_ws(ws, frames, frame_start, edits)  # noqa: E731
        if space is None:
            space = "w" if str(interp).strip().lower() == "lerp" else "z"
        self._labels(1, class_idx)  # validate before any work
        if any(key.in_w for key in waypoints):  # a stored w or style mixing: the walk runs in W+, whatever `space`
            space = "w"  # its latents are ws [num_ws, w_dim] (3-D batches in _stream)
            latents = walk_ws(waypoints, frame_start, frame_end, num_ws=self.num_ws, w_dim=self.w_dim,
                              z_dim=self.z_dim, map_z=lambda z: self.map_z(z[None], psi, class_idx)[0],
                              easing=easing, loop=loop)
        elif space == "w":
            cache: dict = {}

            def resolve(key: Waypoint) -> np.ndarray:
                ident = ("seed", key.seed) if key.seed is not None else ("z", key.frame)
                if ident not in cache:
                    cache[ident] = self.seed_to_w(key, psi, class_idx)
                return cache[ident]

            latents = walk_latents(waypoints, self.w_dim, frame_start, frame_end, interp=interp, easing=easing,
                                   loop=loop, space="w", resolve=resolve)
        else:
            latents = walk_latents(waypoints, self.z_dim, frame_start, frame_end, interp=interp, easing=easing,
                                   loop=loop, space="z")
        if skip_frames:
            latents = ((frame, vec) for frame, vec in latents if frame not in skip_frames)
        return self._stream(latents, space, psi, noise_mode, batch_size, class_idx, texture, offsets)

    @torch.no_grad()
    def _walk_ws(self, vecs: np.ndarray, space: str, c: torch.Tensor, psi: float) -> np.ndarray:
        """A batch of walk latents (z, or w already truncated) as ws float32 [N, num_ws, w_dim]."""
        if space == "w" and vecs.ndim == 3:  # W+ latents already: one w per layer
            return vecs.astype(np.float32)
        if space == "w":
            return np.repeat(vecs[:, None, :].astype(np.float32), self.num_ws, axis=1)
        zt = torch.from_numpy(np.ascontiguousarray(vecs)).to(self.device)
        return self._map(zt, c, psi).float().cpu().numpy()

    def _stream(self, latents, space, psi, noise_mode, batch_size, class_idx, texture=(False, 1), offsets=None):
        c = self._labels(batch_size, class_idx)
        pending: list[tuple[int, np.ndarray]] = []

        def flush():
            vecs = np.stack([v for _, v in pending])
            seamless, mult = texture
            if offsets is not None or vecs.ndim == 3:  # directions / W+ keys: each frame's ws, in W+
                ws = self._walk_ws(vecs, space, c, psi)
                if offsets is not None:  # directions: each frame's ws moved by its amounts
                    ws = offsets(ws, [f for f, _ in pending])
                wt = torch.from_numpy(ws).to(self.device)
                images = self._render(wt, noise_mode, seamless=seamless, size_multiplier=mult)
            else:
                images = (self._synthesize_w(vecs, noise_mode, seamless, mult) if space == "w"
                          else self._synthesize_z(vecs, c, psi, noise_mode, seamless, mult))
            frames = [f for f, _ in pending]
            pending.clear()
            return zip(frames, images)

        for item in latents:
            pending.append(item)
            if len(pending) == batch_size:
                yield from flush()
        if pending:
            yield from flush()
