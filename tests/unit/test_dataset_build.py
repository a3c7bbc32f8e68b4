"""build_dataset on deliberately messy sources: every outcome checked in report and zip."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_core.data import DatasetBuildCancelled, DatasetError, build_dataset
from tests.support.images import huge_bmp_header, huge_png_header

RES = 32


def smooth(seed: int, w: int = 48, h: int = 48) -> np.ndarray:
    """Low-frequency random colours: distinct images get far-apart perceptual hashes."""
    small = np.random.default_rng(seed).integers(0, 255, (6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def save(path: Path, im: Image.Image, fmt: str | None = None, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **kw)


def zip_images(zip_path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(zip_path) as zf:
        out = {}
        for n in zf.namelist():
            if n.endswith(".png"):
                with Image.open(io.BytesIO(zf.read(n))) as im:
                    assert im.mode == "RGB" and im.size == (RES, RES), n
                    out[n] = np.asarray(im)
        return out


def by_source(report: dict, variant: str = "original") -> dict[str, str]:
    return {it["source"]: it["image"] for it in report["items"] if it["variant"] == variant}


def make_messy_folder(root: Path) -> None:
    rgba = np.dstack([smooth(1), np.full((48, 48), 255, np.uint8)])
    rgba[:, :24, 3] = 0  # left half transparent
    save(root / "rgba.png", Image.fromarray(rgba, "RGBA"))
    grey16 = (smooth(2)[:, :, 0].astype(np.uint16) * 257)
    save(root / "grey16.png", Image.fromarray(grey16))
    pal = Image.fromarray(smooth(3)).convert("P", palette=Image.ADAPTIVE, colors=64)
    save(root / "palette.png", pal, transparency=0)
    save(root / "grey.png", Image.fromarray(smooth(4)).convert("L"))
    save(root / "sub" / "cmyk.jpg", Image.fromarray(smooth(5)).convert("CMYK"), quality=95)
    exif_arr = np.zeros((40, 64, 3), np.uint8)
    exif_arr[:, :32] = (255, 0, 0)
    exif_arr[:, 32:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    save(root / "exif.jpg", Image.fromarray(exif_arr), quality=95, exif=exif.tobytes())
    full = io.BytesIO()
    Image.fromarray(smooth(6)).save(full, "PNG")
    (root / "truncated.png").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (root / "text.png").write_text("not an image")
    (root / "empty.png").write_bytes(b"")
    (root / "huge.png").write_bytes(huge_png_header(100_000, 100_000))
    (root / "huge2.bmp").write_bytes(huge_bmp_header(100_000, 100_000))
    dup = smooth(7)
    save(root / "dup1.png", Image.fromarray(dup))
    save(root / "dup2.bmp", Image.fromarray(dup))  # same pixels, different file bytes
    near = smooth(8)
    save(root / "near_a.png", Image.fromarray(near))
    jitter = np.random.default_rng(9).integers(-2, 3, near.shape)
    save(root / "near_b.png", Image.fromarray(np.clip(near.astype(int) + jitter, 0, 255).astype(np.uint8)))
    save(root / "black.png", Image.new("RGB", (48, 48), (0, 0, 0)))
    save(root / "white.png", Image.new("RGB", (48, 48), (255, 255, 255)))
    save(root / "flat.png", Image.new("RGB", (48, 48), (90, 120, 30)))
    save(root / "tiny.png", Image.fromarray(smooth(10, 16, 16)))
    tiny = io.BytesIO()
    Image.fromarray(smooth(14, 16, 16)).save(tiny, "PNG")
    # small AND corrupt: the corruption is what the user must hear about, not the size
    (root / "tiny_truncated.png").write_bytes(tiny.getvalue()[: len(tiny.getvalue()) // 2])
    save(root / "more" / "pic.webp", Image.fromarray(smooth(11)), lossless=True)
    save(root / "more" / "pic.bmp", Image.fromarray(smooth(12)))
    save(root / "more" / "pic.tiff", Image.fromarray(smooth(13)))
    (root / "notes.txt").write_text("ignored")
    (root / ".DS_Store").write_bytes(b"\0\1")


ACCEPTED = {
    "rgba.png", "grey16.png", "palette.png", "grey.png", "sub/cmyk.jpg", "exif.jpg", "dup1.png",
    "near_a.png", "more/pic.webp", "more/pic.bmp", "more/pic.tiff",
}
REJECTED = {
    "truncated.png": "unreadable", "text.png": "not_image", "empty.png": "unreadable",
    "huge.png": "too_large", "huge2.bmp": "too_large", "dup2.bmp": "duplicate",
    "near_b.png": "near_duplicate", "black.png": "uniform", "white.png": "uniform",
    "flat.png": "uniform", "tiny.png": "too_small", "tiny_truncated.png": "unreadable",
}


@pytest.fixture(scope="module")
def messy_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy")
    make_messy_folder(root / "src")
    events = []
    report = build_dataset(
        root / "src", root / "out" / "ds.zip", resolution=RES, background="#00ff00", workers=2,
        on_progress=events.append,
    )
    return root, report, events


def test_messy_folder_report(messy_build):
    root, report, _ = messy_build
    assert report["counts"] == {
        "found": len(ACCEPTED) + len(REJECTED), "accepted": len(ACCEPTED), "rejected": len(REJECTED),
        "inflated": 0, "images": len(ACCEPTED), "ignored": 1,
    }
    assert {r["file"]: r["code"] for r in report["rejected"]} == REJECTED
    reasons = {r["file"]: r["reason"] for r in report["rejected"]}
    assert "too small (16x16 < 32)" in reasons["tiny.png"]
    assert "dup1.png" in reasons["dup2.bmp"] and "near_a.png" in reasons["near_b.png"]
    assert "black" in reasons["black.png"] and "white" in reasons["white.png"]
    assert set(by_source(report)) == ACCEPTED
    assert report["ignored"] == ["notes.txt"]
    assert report["options"]["crop"] == "center" and report["options"]["background"] == "#00ff00"
    on_disk = json.loads((root / "out" / "ds.report.json").read_text())
    assert on_disk["counts"] == report["counts"] and on_disk["rejected"] == report["rejected"]


def test_messy_folder_zip_contents(messy_build):
    root, report, _ = messy_build
    zpath = root / "out" / "ds.zip"
    with zipfile.ZipFile(zpath) as zf:
        names = sorted(zf.namelist())
        meta = json.loads(zf.read("dataset.json"))
    assert meta["labels"] is None
    assert names == ["00000/img%08d.png" % i for i in range(len(ACCEPTED))] + ["dataset.json"]
    images = zip_images(zpath)
    src = by_source(report)
    rgba = images[src["rgba.png"]]
    assert abs(int(rgba[16, 2, 1]) - 255) < 12 and rgba[16, 2, 0] < 12  # transparent -> green background
    exif = images[src["exif.jpg"]]
    assert exif[2, :, 0].min() > 200 and exif[2, :, 2].max() < 60  # top row red: orientation applied
    assert exif[-3, :, 2].min() > 200 and exif[-3, :, 0].max() < 60
    grey16 = images[src["grey16.png"]]
    assert 30 < grey16.mean() < 225 and grey16.std() > 10  # scaled, not clipped to white
    preview = Image.open(root / "out" / "ds.preview.png")
    assert preview.mode == "RGB" and preview.width >= RES * 3
    assert not [p for p in (root / "out").iterdir() if p.name.endswith(".tmp")]


def test_progress_events(messy_build):
    _, report, events = messy_build
    assert events[0]["stage"] == "scanning" and events[-1]["stage"] == "done"
    last = events[-1]
    assert last["done"] == last["total"] == report["counts"]["found"]
    assert last["accepted"] == len(ACCEPTED) and last["rejected"] == len(REJECTED)
    assert {"done", "total", "accepted", "rejected", "stage"} <= set(last)


def _tiny_folder(root: Path, n: int = 3, w: int = 48, h: int = 48) -> Path:
    for i in range(n):
        save(root / f"img{i}.png", Image.fromarray(smooth(100 + i, w, h)))
    return root


def test_zip_source_is_read_safely(tmp_path):
    zpath = tmp_path / "src.zip"
    good = io.BytesIO()
    Image.fromarray(smooth(20)).save(good, "PNG")
    jpg = io.BytesIO()
    Image.fromarray(smooth(21)).save(jpg, "JPEG", quality=95)
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("imgs/", b"")
        zf.writestr("imgs/a.png", good.getvalue())
        zf.writestr("imgs/b.jpg", jpg.getvalue())
        zf.writestr("__MACOSX/imgs/._a.png", b"junk")
        zf.writestr("../evil.png", good.getvalue())
        zf.writestr("/abs.png", good.getvalue())
        zf.writestr("imgs/readme.txt", b"hi")
    events = []
    report = build_dataset(zpath, tmp_path / "ds.zip", resolution=RES, workers=2, on_progress=events.append)
    assert report["counts"]["accepted"] == 2 and report["counts"]["found"] == 4
    assert events[-1]["done"] == events[-1]["total"] == 4 and events[-1]["rejected"] == 2
    assert set(by_source(report)) == {"imgs/a.png", "imgs/b.jpg"}
    assert {r["file"]: r["code"] for r in report["rejected"]} == {"../evil.png": "unsafe_name", "/abs.png": "unsafe_name"}
    assert report["ignored"] == ["imgs/readme.txt"]
    assert not (tmp_path / "imgs").exists() and not (tmp_path.parent / "evil.png").exists()
    assert len(zip_images(tmp_path / "ds.zip")) == 2


def test_list_source_and_missing_file(tmp_path):
    _tiny_folder(tmp_path / "a", n=2)
    files = [tmp_path / "a" / "img0.png", tmp_path / "a" / "img1.png", tmp_path / "a" / "gone.png"]
    report = build_dataset(files, tmp_path / "ds.zip", resolution=RES, workers=1)
    assert report["counts"]["accepted"] == 2 and report["source"]["kind"] == "list"
    assert [(r["file"], r["code"]) for r in report["rejected"]] == [(str(files[2]), "unreadable")]
    assert "not found" in report["rejected"][0]["reason"]


def _write_video(path: Path, frames: int = 12, fps: int = 6) -> None:
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), (64, 64), fps=fps, quality=9, macro_block_size=16)
    writer.send(None)
    for i in range(frames):
        writer.send(np.ascontiguousarray(smooth(300 + i, 64, 64)))
    writer.close()


def test_video_source_every_nth_and_fps(tmp_path):
    video = tmp_path / "clip.mp4"
    _write_video(video, frames=12, fps=6)  # 2 seconds
    nth = build_dataset(video, tmp_path / "nth.zip", resolution=RES, every_nth=3, workers=1)
    assert nth["source"]["kind"] == "video"
    assert nth["counts"]["found"] == 4 and nth["counts"]["accepted"] == 4, nth["rejected"]
    assert all(name.startswith("clip.mp4#") for name in by_source(nth))
    assert len(zip_images(tmp_path / "nth.zip")) == 4
    per_s = build_dataset(video, tmp_path / "fps.zip", resolution=RES, fps=2, workers=1)
    assert per_s["counts"]["found"] == 4 and per_s["counts"]["accepted"] == 4, per_s["rejected"]
    assert "t=0.500s" in " ".join(by_source(per_s))
    with pytest.raises(DatasetError, match="not both"):
        build_dataset(video, tmp_path / "x.zip", resolution=RES, fps=2, every_nth=2)
    with pytest.raises(DatasetError, match="limit of 2"):
        build_dataset(video, tmp_path / "x.zip", resolution=RES, every_nth=1, max_images=2)
    (tmp_path / "fake.mp4").write_text("not a video")
    with pytest.raises(DatasetError, match="cannot read video fake.mp4"):
        build_dataset(tmp_path / "fake.mp4", tmp_path / "x.zip", resolution=RES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["clip.mp4", "fake.mp4", *(
        f"{s}.{ext}" for s in ("nth", "fps") for ext in ("zip", "report.json", "preview.png"))])


def test_labels_from_folders(tmp_path):
    src = tmp_path / "src"
    for cls, seeds in (("cat", (1, 2)), ("dog", (3,))):
        for s in seeds:
            save(src / cls / f"{s}.png", Image.fromarray(smooth(40 + s)))
    save(src / "loose.png", Image.fromarray(smooth(50)))
    report = build_dataset(src, tmp_path / "ds.zip", resolution=RES, labels_from_folders=True, workers=1)
    assert report["class_names"] == ["cat", "dog"]
    assert [(r["file"], r["code"]) for r in report["rejected"]] == [("loose.png", "no_class_folder")]
    with zipfile.ZipFile(tmp_path / "ds.zip") as zf:
        meta = json.loads(zf.read("dataset.json"))
    labels = dict(meta["labels"])
    src_of = by_source(report)
    assert labels[src_of["cat/1.png"]] == 0 and labels[src_of["cat/2.png"]] == 0 and labels[src_of["dog/3.png"]] == 1
    assert meta["class_names"] == ["cat", "dog"]


def test_labels_from_zip_with_wrapper_folder(tmp_path):
    zpath = tmp_path / "animals.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for cls, s in (("cat", 1), ("cat", 2), ("dog", 3)):
            buf = io.BytesIO()
            Image.fromarray(smooth(70 + s)).save(buf, "PNG")
            zf.writestr(f"animals/{cls}/{s}.png", buf.getvalue())
    report = build_dataset(zpath, tmp_path / "ds.zip", resolution=RES, labels_from_folders=True, workers=1)
    assert report["class_names"] == ["cat", "dog"] and report["counts"]["accepted"] == 3


def test_inflation_variants_are_traceable(tmp_path):
    _tiny_folder(tmp_path / "src", n=2)
    report = build_dataset(
        tmp_path / "src", tmp_path / "ds.zip", resolution=RES, inflate="flip,rot90,zoom", workers=1
    )
    assert report["counts"]["accepted"] == 2 and report["counts"]["inflated"] == 6
    assert report["options"]["inflate"] == ["flip_h", "rot90", "zoom"]
    images = zip_images(tmp_path / "ds.zip")
    assert len(images) == 8
    orig = images[by_source(report)["img0.png"]]
    np.testing.assert_array_equal(images[by_source(report, "flip_h")["img0.png"]], orig[:, ::-1])
    np.testing.assert_array_equal(images[by_source(report, "rot90")["img0.png"]], np.rot90(orig))
    zoom = images[by_source(report, "zoom")["img0.png"]]
    assert np.abs(zoom.astype(int) - orig).mean() > 1  # a different framing, same size
    with pytest.raises(DatasetError, match="unknown inflation"):
        build_dataset(tmp_path / "src", tmp_path / "bad.zip", resolution=RES, inflate="spin")


def test_crop_modes_and_upscale(tmp_path):
    src = tmp_path / "src"
    save(src / "wide.png", Image.fromarray(smooth(60, 96, 32)))
    save(src / "small.png", Image.fromarray(smooth(61, 16, 16)))
    none = build_dataset(src, tmp_path / "none.zip", resolution=RES, crop="none", background="#ff0000", workers=1)
    wide = zip_images(tmp_path / "none.zip")[by_source(none)["wide.png"]]
    assert (wide[:8] == (255, 0, 0)).all() and (wide[-8:] == (255, 0, 0)).all()  # padded top/bottom
    assert {r["file"] for r in none["rejected"]} == {"small.png"}
    up = build_dataset(src, tmp_path / "up.zip", resolution=RES, crop="stretch", allow_upscale=True, workers=1)
    assert up["counts"]["accepted"] == 2 and len(zip_images(tmp_path / "up.zip")) == 2
    r1 = build_dataset(src, tmp_path / "r1.zip", resolution=RES, crop="random", seed=1, workers=1)
    r1b = build_dataset(src, tmp_path / "r1b.zip", resolution=RES, crop="random", seed=1, workers=1)
    imgs = [zip_images(tmp_path / n)[by_source(r)["wide.png"]] for n, r in (("r1.zip", r1), ("r1b.zip", r1b))]
    np.testing.assert_array_equal(imgs[0], imgs[1])


def test_limits_refused_before_work(tmp_path):
    _tiny_folder(tmp_path / "src", n=3)
    events = []
    with pytest.raises(DatasetError, match="3 images, more than the limit of 2"):
        build_dataset(tmp_path / "src", tmp_path / "ds.zip", resolution=RES, max_images=2, on_progress=events.append)
    assert all(e["stage"] == "scanning" for e in events)
    with pytest.raises(DatasetError, match="GB, more than the limit"):
        build_dataset(tmp_path / "src", tmp_path / "ds.zip", resolution=RES, max_source_bytes=100)
    assert list(tmp_path.iterdir()) == [tmp_path / "src"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"resolution": 100}, "power of two"),
        ({"resolution": 2048}, "power of two"),
        ({"crop": "fill"}, "crop must be"),
        ({"background": "red"}, "RRGGBB"),
        ({"fps": 2}, "only apply to a video"),
        ({"every_nth": 0}, "every_nth"),
        ({"fps": "2"}, "fps must be a positive number"),
        ({"every_nth": "3"}, "every_nth"),
        ({"max_images": "many"}, "max_images must be a positive number"),
        ({"max_source_bytes": 0}, "max_source_bytes must be"),
        ({"resolution": True}, "power of two"),
    ],
)
def test_bad_options(tmp_path, kwargs, message):
    _tiny_folder(tmp_path / "src", n=1)
    with pytest.raises(DatasetError, match=message):
        build_dataset(tmp_path / "src", tmp_path / "ds.zip", **{"resolution": RES, **kwargs})
    assert not (tmp_path / "ds.zip").exists()


def test_no_usable_images(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        build_dataset(tmp_path / "src", tmp_path / "ds.zip")
    (tmp_path / "src" / "a.png").write_text("nope")
    with pytest.raises(DatasetError, match="no usable images.*1 not_image"):
        build_dataset(tmp_path / "src", tmp_path / "ds.zip", workers=1)
    with pytest.raises(DatasetError, match="not found"):
        build_dataset(tmp_path / "missing", tmp_path / "ds.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("workers", [1, 2])
def test_should_stop_leaves_nothing(tmp_path, workers):
    _tiny_folder(tmp_path / "src", n=6)
    out = tmp_path / "out"
    out.mkdir()
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(DatasetBuildCancelled):
        build_dataset(tmp_path / "src", out / "ds.zip", resolution=RES, workers=workers, should_stop=should_stop)
    assert os.listdir(out) == []


def test_daemon_process_uses_threads(tmp_path, monkeypatch):
    import gan_core.data.build as builder

    monkeypatch.setattr(builder, "can_spawn_children", lambda: False)
    src = _tiny_folder(tmp_path / "src", n=3)
    with zipfile.ZipFile(tmp_path / "src.zip", "w") as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, p.name)
    report = build_dataset(tmp_path / "src.zip", tmp_path / "ds.zip", resolution=RES, workers=3)
    assert report["options"]["workers"] == 3 and "3 threads" in report["notes"][0]
    assert list(by_source(report)) == ["img0.png", "img1.png", "img2.png"]  # still in order
    reference = build_dataset(src, tmp_path / "ref.zip", resolution=RES, workers=1)
    assert list(zip_images(tmp_path / "ds.zip").keys()) == list(zip_images(tmp_path / "ref.zip").keys())
    for a, b in zip(zip_images(tmp_path / "ds.zip").values(), zip_images(tmp_path / "ref.zip").values()):
        np.testing.assert_array_equal(a, b)
    assert reference["notes"] == []


def test_output_inside_source_is_not_read_back(tmp_path):
    src = _tiny_folder(tmp_path / "src", n=2)
    first = build_dataset(src, src / "ds.zip", resolution=RES, workers=1)
    second = build_dataset(src, src / "ds.zip", resolution=RES, workers=1)
    assert first["counts"] == second["counts"] and second["counts"]["found"] == 2
    assert (src / "ds.preview.png").is_file()


def test_near_duplicate_check_can_be_disabled(tmp_path):
    src = tmp_path / "src"
    near = smooth(8)
    save(src / "a.png", Image.fromarray(near))
    save(src / "b.png", Image.fromarray(np.clip(near.astype(int) + 1, 0, 255).astype(np.uint8)))
    strict = build_dataset(src, tmp_path / "s.zip", resolution=RES, workers=1)
    assert [r["code"] for r in strict["rejected"]] == ["near_duplicate"]
    lax = build_dataset(src, tmp_path / "l.zip", resolution=RES, workers=1, near_duplicate_distance=None)
    assert lax["counts"]["accepted"] == 2


def test_pixel_limit_is_configurable(tmp_path):
    src = _tiny_folder(tmp_path / "src", n=1)
    (src / "big.png").write_bytes(huge_png_header(3000, 3000))  # header only: decoding would fail
    report = build_dataset(src, tmp_path / "ds.zip", resolution=RES, workers=1, max_pixels=2000 * 2000)
    [rej] = report["rejected"]
    assert rej["file"] == "big.png" and rej["code"] == "too_large" and "3000x3000" in rej["reason"]
    assert report["options"]["max_pixels"] == 4_000_000


def test_real_daemonic_process_builds_with_threads(tmp_path):
    """A caller that builds inside a daemonic process (no grandchildren allowed) still gets a dataset, on threads."""
    import multiprocessing

    src = _tiny_folder(tmp_path / "src", n=2)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=build_dataset, args=(str(src), str(tmp_path / "ds.zip")), kwargs={"resolution": RES, "workers": 2},
        daemon=True,
    )
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    report = json.loads((tmp_path / "ds.report.json").read_text())
    assert report["counts"]["accepted"] == 2 and "2 threads" in report["notes"][0]


def test_distinct_small_subjects_are_not_near_duplicates_but_a_resave_is(tmp_path):
    """Renders of a small subject in different places and colours (as an orbit or a set of
    props gives) share coarse grey hashes at low resolution; all must be kept. A re-encoded
    copy of one of them is still caught."""
    from PIL import ImageDraw

    src = tmp_path / "renders"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(24):
        im = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
        x, y, r = rng.integers(60, 240), rng.integers(50, 150), rng.integers(20, 45)
        colour = tuple(int(v) for v in rng.integers(40, 255, 3)) + (255,)
        ImageDraw.Draw(im).ellipse([x - r, y - r, x + r, y + r], fill=colour)
        im.save(src / f"frame_{i:03d}.png")
    white = Image.new("RGBA", (300, 200), (255, 255, 255, 255))
    first = np.asarray(Image.alpha_composite(white, Image.open(src / "frame_000.png")).convert("RGB"))
    jitter = np.random.default_rng(2).integers(-2, 3, first.shape)
    Image.fromarray(np.clip(first.astype(int) + jitter, 0, 255).astype(np.uint8)).save(src / "resaved.png")

    report = build_dataset(src, tmp_path / "discs.zip", resolution=32, crop="none", background="#ffffff", workers=1)
    assert report["counts"]["accepted"] == 24
    assert [(r["file"], r["code"]) for r in report["rejected"]] == [("resaved.png", "near_duplicate")]
