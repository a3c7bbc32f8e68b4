"""Where the add-on keeps what it makes, and how images stay in the .blend.

Files live in the project folder `<folder of the .blend>/latent_studio/<name of the .blend>/`,
so two .blend files in one folder never share (or overwrite) each other's files, and are
referenced by paths relative to the .blend, so moving the whole folder keeps them.

An unsaved file has no folder: the user either saves first or chooses a temporary folder
(`settings.temp_dir`, shown in the panel), which then stands in for the .blend's folder.
When such a file is saved for the first time, what the add-on wrote there is copied
beside the new .blend and its images point at the copies (`adopt_temp_files`).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import bpy

ROOT = "latent_studio"
UNSAVED_STEM = "untitled"  # stands for the .blend's name in a temporary folder

NEEDS_FOLDER = ("This file is not saved, so the add-on has no folder for its files: "
                "save the .blend first, or choose a temporary folder (Latent panel)")


class NoFolder(ValueError):
    """There is nowhere to write: the message says what the user can do."""


def _settings(scene=None):
    return (scene or bpy.context.scene).latent


def base_folder(scene=None):
    """The folder that `//` means: the .blend's folder, the chosen temporary folder, or None."""
    if bpy.data.filepath:
        return os.path.dirname(bpy.path.abspath(bpy.data.filepath))
    temp = _settings(scene).temp_dir
    return temp if temp and os.path.isdir(temp) else None


def _stem():
    if bpy.data.filepath:
        return os.path.splitext(os.path.basename(bpy.data.filepath))[0]
    return UNSAVED_STEM


def project_dir(sub="", scene=None):
    """`<base>/latent_studio/<stem>/<sub>`, created; NoFolder when there is no base folder."""
    base = base_folder(scene)
    if base is None:
        raise NoFolder(NEEDS_FOLDER)
    path = os.path.join(base, ROOT, _stem(), sub)
    os.makedirs(path, exist_ok=True)
    return path


_session_dir = None


def download_dir(sub, scene=None):
    """Where a download that ends up packed can land: the project folder, else a private
    temporary folder (its images are packed, so nothing refers to the file later)."""
    global _session_dir
    try:
        return project_dir(sub, scene), False
    except NoFolder:
        if _session_dir is None:
            _session_dir = tempfile.mkdtemp(prefix="latent-studio-session-")
        path = os.path.join(_session_dir, sub)
        os.makedirs(path, exist_ok=True)
        return path, True


def images_dir(sub, scene=None):
    """(folder, pack) for images the user keeps, by the Storage setting: "SAVE" writes them
    into the project folder (NoFolder while there is none), the other settings download
    where `download_dir` says; `pack` is whether they must then be packed into the .blend."""
    settings = _settings(scene)
    if settings.storage == "SAVE":
        return project_dir(sub, scene), False
    folder, temporary = download_dir(sub, scene)
    return folder, temporary or settings.storage == "PACK"


def new_folder(sub, name, scene=None):
    """A folder no one has used: `<project>/<sub>/<name>_001`, `_002`, ... (created, so two
    bakes started together cannot pick the same one)."""
    parent = project_dir(sub, scene)
    for n in range(1, 10000):
        path = os.path.join(parent, f"{name}_{n:03d}")
        try:
            os.makedirs(path)
        except FileExistsError:
            continue
        return path
    raise NoFolder(f"{parent} already holds 9999 walks: move some elsewhere")


def resolve_folder(path, scene=None):
    """An absolute folder for a user-given path: `//` is relative to the .blend (or to the
    temporary folder of an unsaved file). NoFolder when that cannot be known."""
    path = (path or "").strip()
    if not path:
        raise NoFolder("Choose a dataset folder")
    if path.startswith("//"):
        base = base_folder(scene)
        if base is None:
            raise NoFolder(f"The folder {path} is relative to the .blend. " + NEEDS_FOLDER)
        return os.path.normpath(os.path.join(base, path[2:]))
    if not os.path.isabs(path):
        raise NoFolder(f"The folder {path!r} is neither a full path nor relative to the .blend (//...): "
                       "choose it with the folder button")
    return os.path.normpath(path)


def file_reference(path):
    """How an image should name `path`: relative to the saved .blend when it can be."""
    if bpy.data.filepath:
        try:
            return bpy.path.relpath(path)
        except ValueError:  # another drive on Windows: only an absolute path works
            return path
    return path


def keep_image(img, pack):
    """Make `img` survive save and reopen: a fake user (nothing else may use it yet), a
    path relative to the .blend, and with `pack` its pixels inside the .blend."""
    img.use_fake_user = True
    if img.packed_file is None and img.source in {"FILE", "SEQUENCE"} and img.filepath:
        img.filepath = file_reference(bpy.path.abspath(img.filepath))
    if pack and img.packed_file is None:
        img.pack()
    return img


def _under(path, folder):
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)
    except ValueError:
        return False


# What adopt_temp_files changed, so that a "Save Copy" (after which this file is still
# unsaved) can be undone in save_post: [(image name, old path)], {scene name: temp dir}.
_adopted = {"images": [], "temps": {}}


def adopt_temp_files(new_blend_path):
    """First save of a file that used a temporary folder: copy the add-on's files from it
    to beside the new .blend and point the images at the copies (relative). Returns how
    many files were copied. Nothing is deleted; existing files are never replaced."""
    temps = {s.latent.temp_dir for s in bpy.data.scenes if s.latent.temp_dir}
    _adopted["images"], _adopted["temps"] = [], {}
    if not temps:
        return 0
    target_base = os.path.dirname(os.path.abspath(new_blend_path))
    stem = os.path.splitext(os.path.basename(new_blend_path))[0]
    copied = 0

    def move_target(path, temp):
        rel = os.path.relpath(path, temp)
        parts = rel.split(os.sep)
        if parts[:2] == [ROOT, UNSAVED_STEM]:  # the project folder takes the .blend's name
            parts[1] = stem
        return os.path.join(target_base, *parts)

    for temp in temps:
        if not os.path.isdir(temp):
            continue
        for root, _dirs, names in os.walk(temp):
            for name in names:
                source = os.path.join(root, name)
                dest = move_target(source, temp)
                if not os.path.exists(dest):
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    shutil.copy2(source, dest)
                    copied += 1
        for img in bpy.data.images:
            if img.packed_file is None and img.filepath and _under(bpy.path.abspath(img.filepath), temp):
                _adopted["images"].append((img.name, img.filepath))
                new = move_target(bpy.path.abspath(img.filepath), temp)
                img.filepath = "//" + os.path.relpath(new, target_base).replace(os.sep, "/")
    for scene in bpy.data.scenes:
        if scene.latent.temp_dir:
            _adopted["temps"][scene.name] = scene.latent.temp_dir
            scene.latent.temp_dir = ""
    return copied


def undo_adoption_if_still_unsaved():
    """After the save: when it was a copy, this file is still unsaved and keeps using its
    temporary folder (the copy on disk has the files beside it)."""
    if not bpy.data.filepath:
        for name, path in _adopted["images"]:
            img = bpy.data.images.get(name)
            if img is not None:
                img.filepath = path
        for name, temp in _adopted["temps"].items():
            scene = bpy.data.scenes.get(name)
            if scene is not None:
                scene.latent.temp_dir = temp
    _adopted["images"], _adopted["temps"] = [], {}
