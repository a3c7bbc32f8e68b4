"""Image files on disk: which ones a dataset folder holds (no bpy)."""

from __future__ import annotations

import os

from .limits import IMAGE_EXTENSIONS


def is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder):
    """Names of the image files directly inside `folder`, sorted ([] when it is no folder)."""
    if not folder or not os.path.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if is_image(f) and os.path.isfile(os.path.join(folder, f)))


def has_images(folder):
    """True when `folder` or one of its direct subfolders (class folders) holds images."""
    if list_images(folder):
        return True
    return any(list_images(os.path.join(folder, d)) for d in os.listdir(folder))
