"""Read a dataset zip (StyleGAN2-ADA layout) without extracting it: `ZipDataset` for
training, `dataset_info` for a summary."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from gan_core.data.errors import DatasetError
from gan_core.data.writer import default_side_paths
from gan_core.rules import IMAGE_EXTENSIONS


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DatasetError(f"dataset not found: {path}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{path.name} is not a readable zip file: {exc}") from None


def _image_names(zf: zipfile.ZipFile) -> list[str]:
    names = []
    for name in zf.namelist():
        p = PurePosixPath(name)
        if name.endswith("/") or any(part.startswith(".") or part == "__MACOSX" for part in p.parts):
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            names.append(name)
    return sorted(names)


def _load_labels(zf: zipfile.ZipFile, names: list[str], zip_name: str):
    """-> (float32 [N, label_dim] or None, class_names or None). Ints become one-hot."""
    if "dataset.json" not in zf.namelist():
        return None, None
    try:
        meta = json.loads(zf.read("dataset.json"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{zip_name}: dataset.json is not valid JSON: {exc}") from None
    raw = meta.get("labels") if isinstance(meta, dict) else None
    if raw is None:
        return None, None
    try:
        by_name = {str(fname).replace("\\", "/"): value for fname, value in raw}
        values = [by_name[n] for n in names]
    except KeyError as exc:
        raise DatasetError(f"{zip_name}: dataset.json has no label for {exc.args[0]}") from None
    except (TypeError, ValueError):
        raise DatasetError(f"{zip_name}: dataset.json 'labels' must be a list of [file, label] pairs") from None
    arr = np.array(values)
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
            raise DatasetError(f"{zip_name}: class labels must be whole numbers >= 0")
        onehot = np.zeros((len(values), int(arr.max()) + 1 if arr.size else 0), dtype=np.float32)
        onehot[np.arange(len(values)), arr] = 1
        arr = onehot
    class_names = meta.get("class_names")
    return arr.astype(np.float32), class_names if isinstance(class_names, list) else None


def _decode(data: bytes, name: str, zip_name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            if mode not in ("RGB", "L"):
                raise DatasetError(f"{zip_name}: {name} is {mode}; dataset images must be RGB or greyscale")
            arr = np.array(im)  # a writable copy: torch.from_numpy needs one
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{zip_name}: cannot decode {name}: {exc}") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


class ZipDataset:
    """`ds[i] -> (uint8 torch tensor [C, H, W], float32 label [label_dim])`.

    The zip is opened lazily and once per process (a DataLoader worker opens its own; a
    forked copy of an open file would share its read offset), and never pickled.
    """

    def __init__(self, path, xflip: bool = False) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.xflip = bool(xflip)
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        zf = self._get_zip()
        self._names = _image_names(zf)
        if not self._names:
            raise DatasetError(f"{self.path.name} is not a dataset: it holds no images")
        first = _decode(zf.read(self._names[0]), self._names[0], self.path.name)
        h, w, c = first.shape
        if h != w or h & (h - 1) or h < 4:
            raise DatasetError(
                f"{self.path.name}: images must be square with a power-of-two side, {self._names[0]} is {w}x{h}"
            )
        self.resolution, self.num_channels = h, c
        self._labels, self.class_names = _load_labels(zf, self._names, self.path.name)
        self.label_dim = 0 if self._labels is None else int(self._labels.shape[1])

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.num_channels, self.resolution, self.resolution)

    def _get_zip(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = _open_zip(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_zip"] = None  # each process opens its own
        state["_zip_pid"] = None
        return state

    def __len__(self) -> int:
        return len(self._names) * (2 if self.xflip else 1)

    def get_label(self, idx: int) -> np.ndarray:
        i = idx % len(self._names)
        if self._labels is None:
            return np.zeros((0,), dtype=np.float32)
        return self._labels[i].copy()

    def __getitem__(self, idx: int):
        import torch

        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} images")
        idx %= len(self)
        n = len(self._names)
        name = self._names[idx % n]
        arr = _decode(self._get_zip().read(name), name, self.path.name)
        if arr.shape != (self.resolution, self.resolution, self.num_channels):
            raise DatasetError(
                f"{self.path.name}: {name} is {arr.shape[1]}x{arr.shape[0]}x{arr.shape[2]}, "
                f"expected {self.resolution}x{self.resolution}x{self.num_channels} like the first image"
            )
        chw = arr.transpose(2, 0, 1)
        if idx >= n:  # the mirrored half, as the reference does with xflip
            chw = chw[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(chw)), self.get_label(idx)

    def verify(self) -> None:
        """Check every image's header (size, mode) without decoding pixels: about a second
        for 25k images, so training can refuse a mixed-size zip before it starts."""
        zf = self._get_zip()
        expected_mode = "RGB" if self.num_channels == 3 else "L"
        for name in self._names:
            try:
                with zf.open(name) as fh, Image.open(fh) as im:
                    size, mode = im.size, im.mode
            except Exception as exc:
                raise DatasetError(f"{self.path.name}: cannot read {name}: {exc}") from None
            if size != (self.resolution, self.resolution) or mode != expected_mode:
                raise DatasetError(
                    f"{self.path.name}: {name} is {size[0]}x{size[1]} {mode}, expected "
                    f"{self.resolution}x{self.resolution} {expected_mode} like the first image"
                )

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None


def dataset_info(path) -> dict:
    """Count, resolution, labels, and the build report's summary when it sits beside the zip."""
    ds = ZipDataset(path)
    try:
        info = {
            "name": ds.name,
            "path": str(ds.path),
            "count": len(ds),
            "resolution": ds.resolution,
            "num_channels": ds.num_channels,
            "labels": ds.has_labels,
            "label_dim": ds.label_dim,
            "class_names": ds.class_names,
            "size_bytes": ds.path.stat().st_size,
            "report": None,
        }
    finally:
        ds.close()
    report_path, preview_path = default_side_paths(ds.path)
    if report_path.is_file():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
            info["report"] = {
                "counts": report.get("counts"),
                "rejected_by_reason": report.get("rejected_by_reason"),
                "options": report.get("options"),
                "source": report.get("source"),
            }
        except (OSError, ValueError):
            info["report"] = {"error": "report.json beside the dataset is unreadable"}
    info["preview"] = str(preview_path) if preview_path.is_file() else None
    return info
