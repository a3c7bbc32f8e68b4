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
from gan_core.latent import Waypoint, parse_seeds, seeds_to_z, walk_latents


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

    @torch.no_grad()
    def _synthesize_z(self, z: np.ndarray, c: torch.Tensor, psi: float, noise_mode: str) -> np.ndarray:
        zt = torch.from_numpy(np.ascontiguousarray(z)).to(self.device)
        return self._render(self.G.mapping(zt, c[: len(z)], truncation_psi=psi), noise_mode)

    @torch.no_grad()
    def _synthesize_w(self, w: np.ndarray, noise_mode: str) -> np.ndarray:
        ws = torch.from_numpy(np.ascontiguousarray(w)).to(self.device).unsqueeze(1).repeat(1, self.num_ws, 1)
        return self._render(ws, noise_mode)

    def _render(self, ws: torch.Tensor, noise_mode: str) -> np.ndarray:
        """The one place every image is synthesized: ws [N, num_ws, w_dim] -> uint8 [N, H, W, 3]."""
        return to_uint8(self.G.synthesis(ws, noise_mode=noise_mode))

    @torch.no_grad()
    def map_z(self, z, psi: float = 1.0, class_idx=None) -> np.ndarray:
        """z [N, z_dim] -> (truncated) ws float32 [N, num_ws, w_dim]: the latents that tools
        which work in W (explorer, directions, projection, mixing) start from."""
        psi = validate_psi(psi)
        zs = self._z_batch(None, z)
        zt = torch.from_numpy(np.ascontiguousarray(zs)).to(self.device)
        return self.G.mapping(zt, self._labels(len(zs), class_idx), truncation_psi=psi).float().cpu().numpy()

    @torch.no_grad()
    def synthesize_ws(self, ws, noise_mode: str = "const", batch_size: int = 16) -> np.ndarray:
        """ws [N, num_ws, w_dim] (or [N, w_dim], broadcast to every layer) -> uint8 [N, H, W, 3]."""
        noise_mode, batch_size = validate_noise_mode(noise_mode), _validate_batch(batch_size)
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
            parts.append(self._render(wt, noise_mode))
        return np.concatenate(parts)

    def generate(self, seeds=None, z=None, psi: float = 1.0, noise_mode: str = "const", class_idx=None,
                 batch_size: int = 16) -> np.ndarray:
        """uint8 [N, H, W, 3], one image per seed (or z row), in order."""
        psi, noise_mode = validate_psi(psi), validate_noise_mode(noise_mode)
        batch_size = _validate_batch(batch_size)
        zs = self._z_batch(seeds, z)
        c = self._labels(min(batch_size, len(zs)), class_idx)
        out = np.empty((len(zs), self.resolution, self.resolution, 3), dtype=np.uint8)
        for i in range(0, len(zs), batch_size):
            out[i:i + batch_size] = self._synthesize_z(zs[i:i + batch_size], c, psi, noise_mode)
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
                    skip_frames: Container[int] = ()) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame, uint8 [H, W, 3]) for each frame in order, computing `batch_size` at a time.

        Frames in `skip_frames` are neither synthesized nor yielded (a resumed walk that has
        them on disk already); every other frame is exactly what a full render would give,
        since each frame's latent depends only on the waypoints and the frame range.

        `space` None means z for slerp (z is gaussian: stay on its shell) and w for lerp (w
        space is where straight lines look smooth). Every argument is checked here, before
        the first frame is rendered.
        """
        psi, noise_mode = validate_psi(psi), validate_noise_mode(noise_mode)
        batch_size = _validate_batch(batch_size)
        if space is None:
            space = "w" if str(interp).strip().lower() == "lerp" else "z"
        self._labels(1, class_idx)  # validate before any work
        if space == "w":
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
        return self._stream(latents, space, psi, noise_mode, batch_size, class_idx)

    def _stream(self, latents, space, psi, noise_mode, batch_size, class_idx):
        c = self._labels(batch_size, class_idx)
        pending: list[tuple[int, np.ndarray]] = []

        def flush():
            vecs = np.stack([v for _, v in pending])
            images = self._synthesize_w(vecs, noise_mode) if space == "w" else self._synthesize_z(vecs, c, psi, noise_mode)
            frames = [f for f, _ in pending]
            pending.clear()
            return zip(frames, images)

        for item in latents:
            pending.append(item)
            if len(pending) == batch_size:
                yield from flush()
        if pending:
            yield from flush()
