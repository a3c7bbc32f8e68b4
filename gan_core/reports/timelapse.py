"""The time-lapse of a training run: its snapshot grids in order, as numbered PNG frames and
as an H.264 MP4, with the step drawn on every frame.

Layout in the run folder:

    timelapse/frame_<step:06d>.png   one frame per snapshot grid, all of one size (the first
                                     frame's), kept when retention deletes the snapshot itself
    timelapse/video.json             the steps the MP4 was made from (so it is rebuilt only
                                     when frames were added)
    timelapse/frames.zip             the frames renumbered 1..N for an image sequence (made on
                                     request, cached)
    timelapse.mp4                    all frames at FPS frames per second

Incremental: each snapshot adds its frame, and the MP4 is then rebuilt from the frame PNGs
(small, and re-encoding them takes well under a second for a few hundred frames of a
tiny grid; far less than a snapshot itself). Frames are fed to the bundled ffmpeg
(imageio-ffmpeg's binary) as raw RGB on stdin, so frame numbers never need to be
consecutive and nothing depends on ffmpeg's file-pattern support. Every file is replaced
atomically: a reader sees the old video or the new one.

`update_timelapse` is what the training loop calls after a snapshot: it never raises, so a
broken time-lapse can never stop training; what went wrong comes back as a note.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from gan_core.fileio import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

FRAMES_DIR = "timelapse"
VIDEO_NAME = "timelapse.mp4"
VIDEO_INFO_NAME = "video.json"
FRAMES_ZIP_NAME = "frames.zip"
FPS = 10  # one frame per snapshot: 100 snapshots play in 10 s
MAX_SIDE = 1024  # a 4x4 grid of 1024 px samples is 4096 px: frames are scaled down to this
MIN_SIDE = 256  # a 4x4 grid of 32 px samples is 128 px: scaled up (whole pixels) so the text reads
FFMPEG_TIMEOUT_S = 600
_FRAME_RE = re.compile(r"^frame_(\d{6,})\.png$")
NO_FFMPEG = ("no ffmpeg to encode the time-lapse video ({detail}): its frames are still written to "
             "timelapse/; install imageio-ffmpeg (a Latent Studio dependency) or set IMAGEIO_FFMPEG_EXE to an "
             "ffmpeg program")


class TimelapseError(RuntimeError):
    """The time-lapse could not be made; the message says why and what to do."""


# ------------------------------------------------------------------ where things are

def frames_dir(run_dir) -> Path:
    return Path(run_dir) / FRAMES_DIR


def frame_path(run_dir, step: int) -> Path:
    return frames_dir(run_dir) / f"frame_{int(step):06d}.png"


def video_path(run_dir) -> Path:
    return Path(run_dir) / VIDEO_NAME


def list_frames(run_dir) -> list[tuple[int, Path]]:
    """(step, path) of every frame, oldest step first."""
    folder = frames_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FRAME_RE.match(p.name))]
    return sorted(found)


def disk_usage(run_dir) -> tuple[int, int]:
    """(frames, bytes) of the time-lapse on disk now: its frames, the MP4 and the cached zip."""
    frames = list_frames(run_dir)
    files = [path for _, path in frames] + [video_path(run_dir), frames_dir(run_dir) / FRAMES_ZIP_NAME]
    total = 0
    for path in files:
        try:
            total += path.stat().st_size
        except OSError:  # not made (yet), or deleted under us: it takes no disk
            pass
    return len(frames), total


def has_frames(run_dir) -> bool:
    """Whether the run has a frame yet (stops at the first: cheap for a job listing)."""
    try:
        with os.scandir(frames_dir(run_dir)) as entries:
            return any(_FRAME_RE.match(e.name) for e in entries)
    except OSError:
        return False


# ------------------------------------------------------------------ frames

def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _bar_height(width: int) -> int:
    """Height of the caption strip under the grid, from the frame's width alone, so a frame's
    size says where its picture ends."""
    return _even(max(20, width / 16))


def _picture_size(grid_size: tuple[int, int]) -> tuple[int, int]:
    """Size of the picture part of a frame made from a grid of `grid_size`."""
    w, h = grid_size
    side = max(w, h)
    if side > MAX_SIDE:
        scale = MAX_SIDE / side
    elif side < MIN_SIDE:
        scale = -(-MIN_SIDE // side)  # a whole factor: nearest-neighbour keeps the pixels sharp
    else:
        scale = 1
    return _even(w * scale), _even(h * scale)


def _font(height: int):
    try:
        return ImageFont.load_default(size=height)
    except (TypeError, OSError, ImportError):  # a Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _fit(grid: Image.Image, box: tuple[int, int]) -> Image.Image:
    """`grid` scaled to fit `box` (aspect kept), centred on black."""
    bw, bh = box
    gw, gh = grid.size
    scale = min(bw / gw, bh / gh)
    size = (max(1, round(gw * scale)), max(1, round(gh * scale)))
    if size != grid.size:
        whole = scale >= 1 and float(scale).is_integer()
        grid = grid.resize(size, Image.Resampling.NEAREST if whole else Image.Resampling.LANCZOS)
    if grid.size == box:
        return grid
    canvas = Image.new("RGB", box)
    canvas.paste(grid, ((bw - size[0]) // 2, (bh - size[1]) // 2))
    return canvas


def caption(step: int, kimg: float | None = None) -> str:
    text = f"step {int(step):,}"
    if kimg is not None:
        text += f"   {float(kimg):.1f} kimg"
    return text


def render_frame(grid: Image.Image, step: int, kimg: float | None = None,
                 frame_size: tuple[int, int] | None = None) -> Image.Image:
    """One time-lapse frame: the grid over a dark strip that names the step. `frame_size`
    (both even) fixes the frame's size; None derives it from the grid."""
    grid = grid.convert("RGB")
    if frame_size is None:
        pw, ph = _picture_size(grid.size)
        frame_size = (pw, ph + _bar_height(pw))
    width, height = frame_size
    bar = _bar_height(width)
    frame = Image.new("RGB", (width, height), (24, 24, 24))
    frame.paste(_fit(grid, (width, height - bar)), (0, 0))
    draw = ImageDraw.Draw(frame)
    font = _font(int(bar * 0.6))
    draw.text((max(4, bar // 3), height - bar / 2), caption(step, kimg), fill=(240, 240, 240), font=font, anchor="lm")
    return frame


def add_frame(run_dir, step: int, grid_path, kimg: float | None = None) -> Path:
    """Write (or replace) the frame of `step` from the grid PNG at `grid_path`, at the size of
    the frames already there (the first frame fixes it for the whole run)."""
    frames = [p for s, p in list_frames(run_dir) if s != int(step)]
    size = None
    if frames:
        with Image.open(frames[0]) as first:
            size = first.size
    with Image.open(grid_path) as grid:
        frame = render_frame(grid, step, kimg, size)
    target = frame_path(run_dir, step)
    with atomic_path(target) as tmp:
        frame.save(tmp, format="PNG")
    return target


# ------------------------------------------------------------------ the video

def ffmpeg_exe() -> str:
    """The bundled ffmpeg (imageio-ffmpeg: its binary, or IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise TimelapseError(NO_FFMPEG.format(detail="imageio-ffmpeg is not installed")) from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise TimelapseError(NO_FFMPEG.format(detail=str(exc).rstrip("."))) from None


def _frame_bytes(path: Path, size: tuple[int, int]) -> bytes:
    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != size:  # a frame changed by hand: fitted rather than breaking the video
            img = _fit(img, size)
        return img.tobytes()


def _encode(exe: str, frames: list[Path], size: tuple[int, int], fps: int, out: Path) -> None:
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-framerate", str(fps), "-i", "pipe:0",
           "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", "-f", "mp4", str(out)]
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg can never block on it
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        except OSError as exc:  # missing, not executable, wrong platform
            raise TimelapseError(NO_FFMPEG.format(detail=f"cannot run {Path(exe).name}: {exc.strerror or exc}")) from None
        try:
            try:
                for path in frames:
                    proc.stdin.write(_frame_bytes(path, size))
                proc.stdin.close()
            except BrokenPipeError:  # ffmpeg quit early: its message says why
                pass
            code = proc.wait(timeout=FFMPEG_TIMEOUT_S)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if code != 0:
            errors.seek(0)
            text = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise TimelapseError(f"ffmpeg could not encode the time-lapse (exit {code}): "
                                 + (text[-1] if text else "no message"))


def build_video(run_dir, fps: int = FPS) -> Path:
    """(Re)build timelapse.mp4 from every frame: H.264, yuv420p, `fps` frames per second.
    Raises TimelapseError (no frames, no ffmpeg, ffmpeg failed); the old video then stays."""
    frames = list_frames(run_dir)
    if not frames:
        raise TimelapseError("the run has no time-lapse frames yet (one is added per snapshot)")
    with Image.open(frames[0][1]) as first:
        size = first.size
    exe = ffmpeg_exe()
    target = video_path(run_dir)
    with atomic_path(target) as tmp:
        _encode(exe, [p for _, p in frames], size, fps, tmp)
    atomic_write_text(frames_dir(run_dir) / VIDEO_INFO_NAME,
                      json.dumps({"steps": [s for s, _ in frames], "fps": fps, "size": list(size)}))
    return target


def _video_steps(run_dir) -> list[int] | None:
    """The steps the current video was made from; None when there is no (known) video."""
    if not video_path(run_dir).is_file():
        return None
    try:
        return [int(s) for s in json.loads((frames_dir(run_dir) / VIDEO_INFO_NAME).read_text())["steps"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------------ what the training loop calls

def update_timelapse(run_dir, snapshots: list[dict]) -> dict:
    """Add a frame for every snapshot in `snapshots` ({step, kimg, grid} entries, as
    `gan_core.train.snapshots.list_snapshots` gives) that has a grid but no frame yet, then
    rebuild the video when frames were added (or it is missing or out of date).

    Never raises: returns {"frames": n, "added": [steps], "video": path or None, "note":
    what went wrong or None}. A run resumed from before this feature existed gets frames for
    the grids it still has."""
    result = {"frames": 0, "added": [], "video": None, "note": None}
    notes = []
    try:
        have = {s for s, _ in list_frames(run_dir)}
        for entry in sorted(snapshots, key=lambda e: e["step"]):
            grid = entry.get("grid")
            if entry["step"] in have or not grid or not Path(grid).is_file():
                continue
            try:
                add_frame(run_dir, entry["step"], grid, entry.get("kimg"))
                result["added"].append(entry["step"])
            except (OSError, ValueError) as exc:  # an unreadable grid: the others still count
                notes.append(f"no time-lapse frame for step {entry['step']}: {exc}")
        frames = list_frames(run_dir)
        result["frames"] = len(frames)
        if frames and _video_steps(run_dir) != [s for s, _ in frames]:
            result["video"] = str(build_video(run_dir))
        elif frames:
            result["video"] = str(video_path(run_dir))
    except TimelapseError as exc:
        notes.append(str(exc))
    except Exception as exc:  # never stop training for a time-lapse
        notes.append(f"the time-lapse was not updated: {type(exc).__name__}: {exc}")
    if notes:
        result["note"] = "; ".join(notes)
        log.warning("time-lapse of %s: %s", run_dir, result["note"])
    return result


# ------------------------------------------------------------------ the frames for an image sequence

def frames_zip(run_dir) -> Path | None:
    """A zip of the frames numbered frame_00001.png ... in step order (an image sequence
    Blender plays one file per scene frame), with frames.json mapping each number to its
    step. Cached in timelapse/frames.zip and made again only when the frames changed.
    None when there are no frames."""
    frames = list_frames(run_dir)
    if not frames:
        return None
    stamp = [[s, p.stat().st_size, p.stat().st_mtime_ns] for s, p in frames]
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest().encode()
    target = frames_dir(run_dir) / FRAMES_ZIP_NAME
    try:
        with zipfile.ZipFile(target) as cached:
            if cached.comment == key:
                return target
    except (OSError, zipfile.BadZipFile):
        pass
    index = {"fps": FPS, "frames": [{"frame": i, "step": s} for i, (s, _) in enumerate(frames, 1)]}
    with atomic_path(target) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            zf.comment = key
            for i, (_, path) in enumerate(frames, 1):
                zf.write(path, f"frame_{i:05d}.png")
            zf.writestr("frames.json", json.dumps(index, indent=1))
    return target
