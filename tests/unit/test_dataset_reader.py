"""ZipDataset and dataset_info: reading built datasets and refusing zips that are not."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.data import DatasetError, ZipDataset, build_dataset, dataset_info
from gan_core.data.writer import write_images
from tests.support.training_data import black_square_on_white, colour_pattern


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def write_zip(path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def rand_img(seed: int, size: int = 8, channels: int = 3) -> np.ndarray:
    shape = (size, size, channels) if channels > 1 else (size, size)
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def test_items_labels_and_xflip(tmp_path):
    imgs = [rand_img(i) for i in range(3)]
    files = {f"00000/img{i:08d}.png": png(a) for i, a in enumerate(imgs)}
    files["dataset.json"] = json.dumps({"labels": [[n, i % 2] for i, n in enumerate(sorted(files))]}).encode()
    write_zip(tmp_path / "d.zip", files)
    ds = ZipDataset(tmp_path / "d.zip", xflip=True)
    assert (len(ds), ds.resolution, ds.num_channels, ds.label_dim, ds.name) == (6, 8, 3, 2, "d")
    img, label = ds[1]
    assert img.dtype == torch.uint8 and tuple(img.shape) == (3, 8, 8)
    np.testing.assert_array_equal(img.numpy(), imgs[1].transpose(2, 0, 1))
    assert label.dtype == np.float32 and label.tolist() == [0.0, 1.0]
    mirrored, label_m = ds[4]  # index >= n: the mirror of image 1
    np.testing.assert_array_equal(mirrored.numpy(), imgs[1].transpose(2, 0, 1)[:, :, ::-1])
    assert label_m.tolist() == [0.0, 1.0]
    with pytest.raises(IndexError):
        ds[6]
    assert len(ZipDataset(tmp_path / "d.zip")) == 3


def test_unlabelled_greyscale(tmp_path):
    write_zip(tmp_path / "g.zip", {"a.png": png(rand_img(1, 16, 1)), "dataset.json": b'{"labels": null}'})
    ds = ZipDataset(tmp_path / "g.zip")
    img, label = ds[0]
    assert tuple(img.shape) == (1, 16, 16) and ds.num_channels == 1
    assert label.shape == (0,) and label.dtype == np.float32 and ds.label_dim == 0


def test_pickle_and_dataloader_workers(tmp_path):
    write_zip(tmp_path / "d.zip", {f"{i}.png": png(rand_img(i)) for i in range(4)})
    ds = ZipDataset(tmp_path / "d.zip")
    ds[0]  # opens the zip in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._zip is None
    np.testing.assert_array_equal(clone[2][0].numpy(), ds[2][0].numpy())
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    batches = [b[0] for b in loader]
    assert torch.equal(torch.cat(batches), torch.stack([ds[i][0] for i in range(4)]))


@pytest.mark.parametrize(
    "files, message",
    [
        ({"readme.txt": b"hi"}, "holds no images"),
        ({"a.png": png(rand_img(0, 8)[:6])}, "square with a power-of-two side"),
        ({"a.png": png(rand_img(0, 12))}, "square with a power-of-two side"),
        ({"a.png": png(rand_img(0)), "dataset.json": b"{nope"}, "not valid JSON"),
        ({"a.png": png(rand_img(0)), "dataset.json": b'{"labels": [["b.png", 0]]}'}, "no label for a.png"),
        ({"a.png": b"garbage"}, "cannot decode a.png"),
    ],
)
def test_non_dataset_zips_are_refused(tmp_path, files, message):
    write_zip(tmp_path / "x.zip", files)
    with pytest.raises(DatasetError, match=message):
        ZipDataset(tmp_path / "x.zip")


def test_not_a_zip_and_missing(tmp_path):
    (tmp_path / "x.zip").write_text("plain text")
    with pytest.raises(DatasetError, match="not a readable zip"):
        ZipDataset(tmp_path / "x.zip")
    with pytest.raises(DatasetError, match="not found"):
        ZipDataset(tmp_path / "missing.zip")


def test_inconsistent_sizes_fail_clearly(tmp_path):
    write_zip(tmp_path / "x.zip", {"a.png": png(rand_img(0, 8)), "b.png": png(rand_img(1, 16))})
    ds = ZipDataset(tmp_path / "x.zip")
    with pytest.raises(DatasetError, match="b.png is 16x16x3, expected 8x8x3"):
        ds[1]
    with pytest.raises(DatasetError, match="b.png is 16x16 RGB, expected 8x8 RGB"):
        ds.verify()
    write_zip(tmp_path / "y.zip", {"a.png": png(rand_img(0, 8)), "b.png": png(rand_img(1, 8, 1))})
    with pytest.raises(DatasetError, match="b.png is 8x8 L, expected 8x8 RGB"):
        ZipDataset(tmp_path / "y.zip").verify()
    write_zip(tmp_path / "z.zip", {"a.png": png(rand_img(0, 8)), "b.png": png(rand_img(1, 8))})
    ZipDataset(tmp_path / "z.zip").verify()


def test_dataset_info_reads_report(tmp_path):
    src = tmp_path / "src"
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        small = np.random.default_rng(ord(cls)).integers(0, 255, (5, 5, 3), dtype=np.uint8)
        Image.fromarray(small).resize((40, 40), Image.BICUBIC).save(src / cls / "x.png")
    build_dataset(src, tmp_path / "ds.zip", resolution=32, labels_from_folders=True, workers=1)
    info = dataset_info(tmp_path / "ds.zip")
    assert info["count"] == 2 and info["resolution"] == 32 and info["num_channels"] == 3
    assert info["labels"] is True and info["label_dim"] == 2 and info["class_names"] == ["a", "b"]
    assert info["report"]["counts"]["accepted"] == 2
    assert info["preview"].endswith("ds.preview.png")
    ds = ZipDataset(tmp_path / "ds.zip")
    assert sorted(ds[i][1].argmax() for i in range(2)) == [0, 1]


def test_write_images_is_read_back_by_zip_dataset(tmp_path):
    path = write_images(tmp_path / "d.zip", [black_square_on_white(), colour_pattern()])
    ds = ZipDataset(path)
    assert len(ds) == 2 and ds.resolution == 32 and ds.num_channels == 3 and not ds.has_labels
    img, _ = ds[1]
    assert np.array_equal(img.permute(1, 2, 0).numpy(), colour_pattern())
    assert len(ZipDataset(path, xflip=True)) == 4
    labelled = ZipDataset(write_images(tmp_path / "l.zip", [colour_pattern()] * 3, labels=[0, 2, 1]))
    assert labelled.class_names == ["0", "1", "2"] and labelled.get_label(1).tolist() == [0, 0, 1]
