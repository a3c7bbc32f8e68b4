"""Write a dataset zip in the StyleGAN2-ADA layout: 00000/img00000000.png, 1000 per folder,
plus dataset.json with the labels (or null)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

IMAGES_PER_FOLDER = 1000


def default_side_paths(out_zip: Path) -> tuple[Path, Path]:
    """`<stem>.report.json` and `<stem>.preview.png` beside the zip."""
    stem = out_zip.name[: -len(out_zip.suffix)] if out_zip.suffix else out_zip.name
    return out_zip.with_name(f"{stem}.report.json"), out_zip.with_name(f"{stem}.preview.png")


def archive_name(index: int) -> str:
    return f"{index // IMAGES_PER_FOLDER:05d}/img{index:08d}.png"


class StyleGANZipWriter:
    """Streams PNGs into a zip; `close()` adds dataset.json. Stored, not deflated: PNG data
    is already compressed, so deflate would only cost time."""

    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)
        self._labels: list[list] = []
        self.count = 0

    def add(self, png: bytes, label: int | None) -> str:
        name = archive_name(self.count)
        self._zip.writestr(name, png)
        if label is not None:
            self._labels.append([name, int(label)])
        self.count += 1
        return name

    def close(self, class_names: list[str] | None) -> None:
        meta: dict = {"labels": self._labels if class_names is not None else None}
        if class_names is not None:
            # Extra key, ignored by the reference tools: lets us name classes later.
            meta["class_names"] = class_names
        self._zip.writestr("dataset.json", json.dumps(meta))
        self._zip.close()

    def abort(self) -> None:
        self._zip.close()


def write_images(path: Path, images, labels=None) -> Path:
    """Write uint8 [H, W, C] arrays as a dataset zip (for tests, benchmarks and tools that
    already hold pixels; artists' files go through build_dataset). `labels`: one class
    index per image, or None."""
    from PIL import Image

    writer = StyleGANZipWriter(path)
    labels = list(labels) if labels is not None else None
    for i, img in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(np.asarray(img, dtype=np.uint8)).save(buf, format="PNG")
        writer.add(buf.getvalue(), None if labels is None else labels[i])
    writer.close(None if labels is None else [str(c) for c in range(max(labels) + 1)])
    return Path(path)
