"""Datasets: build a training-ready zip from images, a zip, a file list or a video, and read it.

Public API (see docs/INTERFACES.md); the work lives in small modules:
dataset_sources (what to read), imageprep / imagegeom (decode, crop, resize, checks),
dataset_worker + ordered_pool (parallel per-image work), dataset_dedup, dataset_writer,
contact_sheet, dataset_build (orchestration) and dataset_reader (ZipDataset, dataset_info).
"""

from .dataset_build import build_dataset
from .dataset_errors import DatasetBuildCancelled, DatasetError
from .dataset_reader import ZipDataset, dataset_info

__all__ = ["build_dataset", "ZipDataset", "dataset_info", "DatasetError", "DatasetBuildCancelled"]
