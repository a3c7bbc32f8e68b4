"""Datasets: build a training-ready zip from images, a zip, a file list or a video, and read it.

The steps live in small modules: sources (what to read), decode (open one image safely),
geometry (crop, resize, inflate), dedup (exact and near duplicates), worker + pool (the
per-image work in parallel processes), writer (the StyleGAN2-ADA zip layout), preview
(the contact sheet), build (the orchestration) and reader (ZipDataset, dataset_info).
"""

from gan_core.data.build import build_dataset, check_build_options
from gan_core.data.errors import DatasetBuildCancelled, DatasetError
from gan_core.data.reader import ZipDataset, dataset_info

__all__ = ["build_dataset", "check_build_options", "ZipDataset", "dataset_info", "DatasetError",
           "DatasetBuildCancelled"]
