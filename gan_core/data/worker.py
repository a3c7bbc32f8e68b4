"""The per-image work of a dataset build, run in worker processes: read, decode, check,
crop/resize, make variants, encode PNGs. Pure function of its inputs; no shared state but a
per-process cache of open source zips."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from gan_core.data import decode, geometry
from gan_core.data.dedup import colour_signature, dhash, pixel_digest
from gan_core.data.errors import RejectedImage

THUMB_SIDE = 96
# A zip member bigger than this is refused before reading it into memory.
MAX_MEMBER_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class PrepOptions:
    resolution: int
    crop: str
    background: tuple[int, int, int]
    allow_upscale: bool
    inflate: tuple[str, ...]
    seed: int
    max_pixels: int
    min_std: float
    # zlib level 3: ~3x faster than Pillow's default 6 for ~10% larger PNGs (measured on
    # 256px photos); encoding dominates the per-image cost, and the size barely matters.
    png_compress_level: int = 3


@dataclass
class Job:
    name: str  # as shown in the report: relative path, zip member or video frame
    kind: str  # "file" | "zip" | "frame"
    ref: object  # path str | (zip path, member name) | uint8 HxWx3 frame
    options: PrepOptions


@dataclass
class Result:
    name: str
    code: str | None = None  # None: accepted
    reason: str | None = None
    pixel_sha256: str | None = None
    dhash: int | None = None
    signature: np.ndarray | None = None  # 16x16 colour cells, confirms a near-duplicate dHash
    pngs: list[tuple[str, bytes]] = field(default_factory=list)  # (variant, PNG bytes), original first
    thumb: np.ndarray | None = None


_open_zips: dict[str, zipfile.ZipFile] = {}
_open_zips_lock = threading.Lock()  # thread-pool builds share this cache


def init_worker(max_pixels: int) -> None:
    """Process-pool initializer: let Pillow's own bomb guard follow our (configurable) limit."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def close_cached_zips() -> None:
    """For in-process builds: do not keep the source zip open after the build."""
    with _open_zips_lock:
        while _open_zips:
            _open_zips.popitem()[1].close()


def _zip_member_bytes(zip_path: str, member: str) -> bytes:
    with _open_zips_lock:
        zf = _open_zips.get(zip_path)
        if zf is None:
            zf = _open_zips[zip_path] = zipfile.ZipFile(zip_path)
    info = zf.getinfo(member)
    if info.file_size > MAX_MEMBER_BYTES:
        raise RejectedImage("too_large", f"zip member too large ({info.file_size} bytes)")
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise RejectedImage("unreadable", f"cannot read from zip: {exc}") from None


def _read_rgb(job: Job) -> Image.Image:
    """Read and decode to RGB; size checks use the header, before any pixel is decoded."""
    opt = job.options
    if job.kind == "frame":
        frame = job.ref
        geometry.check_big_enough(frame.shape[1], frame.shape[0], opt.resolution, opt.crop, opt.allow_upscale)
        return Image.fromarray(frame)
    source = _zip_member_bytes(*job.ref) if job.kind == "zip" else job.ref
    im = decode.open_image(source, opt.max_pixels)
    try:
        try:
            geometry.check_big_enough(*decode.oriented_size(im), opt.resolution, opt.crop, opt.allow_upscale)
        except RejectedImage:
            decode.decode_rgb(im, opt.background)  # a corrupt file is 'unreadable', whatever size its header claims
            raise
        draft = int(opt.resolution * (geometry.ZOOM_FACTOR if "zoom" in opt.inflate else 1) + 1)
        rgb = decode.decode_rgb(im, opt.background, draft_side=draft)
    except BaseException:
        im.close()
        raise
    if rgb is not im:  # closing also frees the pixels, so never close what we return
        im.close()
    return rgb


def _encode_png(arr: np.ndarray, level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def process(job: Job) -> Result:
    """Never raises for bad input: the rejection is in the Result."""
    try:
        return _process(job)
    except RejectedImage as rej:
        return Result(job.name, code=rej.code, reason=rej.reason)
    except MemoryError:
        return Result(job.name, code="too_large", reason="not enough memory to decode")
    except (OSError, ValueError) as exc:  # e.g. a file removed or unreadable mid-build
        return Result(job.name, code="unreadable", reason=f"cannot read: {exc}")
    except Exception as exc:  # a decoder bug on one odd file must not end the whole build
        return Result(job.name, code="unreadable", reason=f"cannot decode: {type(exc).__name__}: {exc}")


def check_not_uniform(content: np.ndarray, min_std: float) -> None:
    """Reject blank renders: every channel nearly constant."""
    pixels = content.reshape(-1, content.shape[-1]).astype(np.float32)
    if float(pixels.std(axis=0).max()) >= min_std:
        return
    mean = float(pixels.mean())
    if mean <= 10:
        raise RejectedImage("uniform", "all black (no detail)")
    if mean >= 245:
        raise RejectedImage("uniform", "all white (no detail)")
    raise RejectedImage("uniform", f"uniform colour (std < {min_std:g})")


def _process(job: Job) -> Result:
    opt = job.options
    im = _read_rgb(job)
    digest = pixel_digest(im)  # before cropping: exact duplicates are the same source picture
    # Crop boxes are computed on the decoded image (JPEG draft may have scaled it down).
    box = geometry.crop_box(im.width, im.height, opt.crop, rng_key=f"{opt.seed}:{job.name}")
    square, content = geometry.render_square(im, box, opt.resolution, opt.crop, opt.background)
    check_not_uniform(content, opt.min_std)
    result = Result(job.name, pixel_sha256=digest, dhash=dhash(square),
                    signature=colour_signature(square))
    result.pngs.append(("original", _encode_png(square, opt.png_compress_level)))
    for variant in opt.inflate:
        if variant == "zoom":
            arr, _ = geometry.render_square(im, geometry.zoom_box(box), opt.resolution, opt.crop, opt.background)
        else:
            arr = geometry.apply_variant(square, variant)
        result.pngs.append((variant, _encode_png(arr, opt.png_compress_level)))
    side = min(THUMB_SIDE, opt.resolution)
    result.thumb = np.asarray(Image.fromarray(square).resize((side, side), Image.BILINEAR))
    return result


def worker_count(requested: int | None) -> int:
    if requested is not None:
        return max(1, int(requested))
    return max(1, min(os.cpu_count() or 1, 8))
